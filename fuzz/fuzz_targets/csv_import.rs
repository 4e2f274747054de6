//! The customer CSV importer's row parser (with phone normalization) over any bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringside_fuzz::import::csv_rows::CsvRows;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = CsvRows::new(data, "CN") {
        for row in rows.take(10_000) {
            let _ = row;
        }
    }
});
