//! The customer CSV import: parses rows ([`csv_rows`]), turns them into drafts and writes them in
//! batches, one transaction per batch, so a crash loses no committed batch and never leaves half
//! a row. A dry run does the same work inside one transaction that is rolled back.
//!
//! Parsing (numbers above all) costs about as much as writing, so the two overlap: while one
//! batch is written on a task of its own, the next is parsed. Batches are still written one at a
//! time and in file order, each after the one before has committed, so a row that repeats a
//! customer of an earlier batch finds it stored.

pub mod csv_rows;

use std::io::Read;

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::storage::customers::{AssetDraft, CustomerDraft, NewPhone};
use crate::storage::import::{Importer, RowOutcome};
use crate::storage::{Storage, StorageError};
use csv_rows::{CsvRows, CustomerRow, RowError};

/// Warnings kept in a summary; a million-row file with a bad column must not fill the screen.
const MAX_WARNINGS: usize = 1000;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub country: String,
    pub dry_run: bool,
    pub batch_size: usize,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportSummary {
    pub rows: u64,
    pub inserted: u64,
    pub updated: u64,
    /// Rows that repeated a customer earlier in the file (same external id or number) and were merged into it.
    pub merged: u64,
    pub rejected: Vec<Rejection>,
    pub warnings: Vec<String>,
    /// Numbers kept raw because they could not be made valid.
    pub invalid_numbers: u64,
    pub dry_run: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Csv(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The next service date: the last service (or purchase) plus the interval in months.
pub fn next_service_due(last: Option<&str>, interval_months: Option<i64>) -> Option<String> {
    let last = NaiveDate::parse_from_str(last?, "%Y-%m-%d").ok()?;
    let months = u32::try_from(interval_months?)
        .ok()
        .filter(|m| *m > 0 && *m <= 240)?;
    last.checked_add_months(Months::new(months))
        .map(|d| d.format("%Y-%m-%d").to_string())
}

fn draft_of(row: CustomerRow) -> CustomerDraft {
    CustomerDraft {
        external_id: row.external_id,
        name: row.name,
        tier: row.tier.to_string(),
        key_account: row.key_account,
        account_manager: row.account_manager,
        birthday: row.birthday,
        timezone: row.timezone,
        language: row.language,
        consent_calls: row.consent_calls,
        notes: row.notes,
        email: row.email,
        provisional: false,
        tags: row.tags,
        phones: row
            .phones
            .into_iter()
            .map(|p| NewPhone {
                normalized: p.normalized,
                kind: p.kind.as_str().to_string(),
                primary: p.primary,
            })
            .collect(),
        assets: row
            .asset
            .map(|a| {
                let day = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
                AssetDraft {
                    kind: "vehicle".into(),
                    plate: a.plate,
                    vin: a.vin,
                    model: a.model,
                    purchase_date: day(a.purchase_date),
                    last_service_date: day(a.last_service_date),
                    service_interval_months: a.service_interval_months.map(i64::from),
                    service_interval_km: a.service_interval_km.map(i64::from),
                    mileage_km: a.mileage_km.map(i64::from),
                    next_service_due: day(a.next_service_due),
                }
            })
            .into_iter()
            .collect(),
    }
}

/// Imports customers from CSV. `progress` is told how many rows have been read so far.
///
/// An import into an empty base builds some indexes only at its end (see
/// `storage::import`); one that fails on the way puts them back before returning its error.
pub async fn import_customers<R: Read>(
    storage: &Storage,
    reader: R,
    options: &ImportOptions,
    progress: impl FnMut(u64),
) -> Result<ImportSummary, ImportError> {
    let result = import_rows(storage, reader, options, progress).await;
    if result.is_err() && !options.dry_run {
        if let Err(e) = storage.restore_deferred_indexes().await {
            tracing::warn!(error = %e, "could not rebuild the indexes the failed import deferred");
        }
    }
    result
}

async fn import_rows<R: Read>(
    storage: &Storage,
    reader: R,
    options: &ImportOptions,
    mut progress: impl FnMut(u64),
) -> Result<ImportSummary, ImportError> {
    let mut rows =
        CsvRows::new(reader, &options.country).map_err(|e| ImportError::Csv(e.to_string()))?;
    let mut summary = ImportSummary {
        dry_run: options.dry_run,
        warnings: rows.header_warnings().to_vec(),
        ..Default::default()
    };
    let batch_size = options.batch_size.max(1);
    let mut dry_tx = if options.dry_run {
        Some(storage.begin_import().await?)
    } else {
        None
    };
    // Batches are written through one connection, on a task that hands it back when done.
    let mut importer = if options.dry_run {
        None
    } else {
        Some(storage.importer().await?)
    };
    let mut batch: Vec<CustomerDraft> = Vec::with_capacity(batch_size);
    let mut writing: Option<BatchWrite> = None;
    let mut done = false;
    while !done {
        batch.clear();
        while batch.len() < batch_size {
            match rows.next() {
                Some(Ok(row)) => {
                    summary.rows += 1;
                    if summary.warnings.len() < MAX_WARNINGS {
                        summary.warnings.extend(
                            row.warnings
                                .iter()
                                .map(|w| format!("line {}: {w}", row.line)),
                        );
                    }
                    summary.invalid_numbers +=
                        row.phones.iter().filter(|p| !p.normalized.valid).count() as u64;
                    batch.push(draft_of(row));
                }
                Some(Err(RowError { line, reason })) => {
                    summary.rows += 1;
                    summary.rejected.push(Rejection { line, reason });
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        if let Some(previous) = writing.take() {
            let (back, outcomes) = written(previous).await?;
            importer = Some(back);
            tally(&mut summary, outcomes);
        }
        if !batch.is_empty() {
            match (dry_tx.as_mut(), importer.take()) {
                (Some(tx), _) => tally(&mut summary, tx.write_batch(&batch).await?),
                (None, Some(mut importer)) => {
                    let drafts = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
                    writing = Some(tokio::spawn(async move {
                        let mut tx = importer.begin().await?;
                        let outcomes = tx.write_batch(&drafts).await?;
                        tx.commit().await?;
                        Ok((importer, outcomes))
                    }));
                }
                (None, None) => unreachable!("the importer is handed back before the next batch"),
            }
        }
        progress(summary.rows);
    }
    if let Some(last) = writing.take() {
        let (back, outcomes) = written(last).await?;
        importer = Some(back);
        tally(&mut summary, outcomes);
    }
    if let Some(importer) = importer {
        importer.finish().await?;
    }
    if let Some(tx) = dry_tx {
        tx.rollback().await?;
    }
    Ok(summary)
}

/// A batch being written on a task of its own, which hands the importer back.
type BatchWrite = tokio::task::JoinHandle<Result<(Importer, Vec<RowOutcome>), StorageError>>;

async fn written(write: BatchWrite) -> Result<(Importer, Vec<RowOutcome>), ImportError> {
    match write.await {
        Ok(done) => Ok(done?),
        Err(e) => Err(ImportError::Storage(StorageError::Other(format!(
            "batch writer failed: {e}"
        )))),
    }
}

fn tally(summary: &mut ImportSummary, outcomes: Vec<RowOutcome>) {
    for o in outcomes {
        match o {
            RowOutcome::Inserted => summary.inserted += 1,
            RowOutcome::Updated => summary.updated += 1,
            RowOutcome::MergedInBatch => summary.merged += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_service_adds_interval_to_last_service() {
        assert_eq!(
            next_service_due(Some("2026-01-31"), Some(1)).as_deref(),
            Some("2026-02-28")
        );
        assert_eq!(
            next_service_due(Some("2025-06-01"), Some(12)).as_deref(),
            Some("2026-06-01")
        );
        assert_eq!(next_service_due(Some("2025-06-01"), None), None);
        assert_eq!(next_service_due(Some("bad"), Some(6)), None);
        assert_eq!(next_service_due(Some("2025-06-01"), Some(-3)), None);
    }
}
