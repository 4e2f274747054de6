//! Agents (people and the PBX) with their extensions and bearer tokens.
//!
//! Tokens are stored as SHA-256 hashes only; the clear token exists once, when it is issued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;

use super::{Arg, Cols, First, FromCols, Result, Storage, StorageError, flag, now_ms};
use crate::auth::Role;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Agent {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub status: String,
    pub extensions: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
}

impl FromCols for Agent {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        let role: String = row.col("role")?;
        Ok(Agent {
            id: row.col("id")?,
            name: row.col("name")?,
            role: role.parse().map_err(|_| {
                sqlx::Error::Decode(format!("unknown role `{role}` in agents").into())
            })?,
            status: row.col("status")?,
            extensions: Vec::new(),
            disabled: flag(row, "disabled")?,
            created_at: row.col("created_at")?,
        })
    }
}

/// How long a token holder found by [`Storage::token_holder`] is taken from memory. Changes this
/// process makes to agents and tokens take effect at once (see [`HolderCache::forget`]); a
/// revocation by another process (`ringside agent revoke`) within this time.
pub const TOKEN_HOLDER_TTL: Duration = Duration::from_secs(1);
/// The most token holders kept; beyond it the cache starts again empty.
const TOKEN_HOLDERS_KEPT: usize = 10_000;

/// Token holders found lately, by token hash, so that a PBX posting hundreds of call events a
/// second is not looked up in the database for each. Only tokens found valid are kept, never
/// misses, and each for [`TOKEN_HOLDER_TTL`] at most, or until the token expires if sooner.
#[derive(Debug, Default)]
pub(crate) struct HolderCache {
    inner: Mutex<Holders>,
}

#[derive(Debug, Default)]
struct Holders {
    /// Bumped by every [`HolderCache::forget`]: a lookup that began before it keeps nothing.
    generation: u64,
    by_hash: HashMap<String, (Agent, Instant)>,
}

impl HolderCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Holders> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The holder kept for `token_hash`, else the generation to hand to [`HolderCache::keep`].
    fn get(&self, token_hash: &str) -> std::result::Result<Agent, u64> {
        let holders = self.lock();
        match holders.by_hash.get(token_hash) {
            Some((agent, until)) if Instant::now() < *until => Ok(agent.clone()),
            _ => Err(holders.generation),
        }
    }

    /// Keeps `agent` for `token_hash` unless something was forgotten since `generation`.
    fn keep(&self, token_hash: &str, agent: &Agent, expires_at: Option<i64>, generation: u64) {
        let mut ttl = TOKEN_HOLDER_TTL;
        if let Some(expires_at) = expires_at {
            let left = u64::try_from(expires_at - now_ms()).unwrap_or(0);
            ttl = ttl.min(Duration::from_millis(left));
        }
        let mut holders = self.lock();
        if holders.generation != generation {
            return;
        }
        if holders.by_hash.len() >= TOKEN_HOLDERS_KEPT {
            holders.by_hash.clear();
        }
        holders.by_hash.insert(
            token_hash.to_string(),
            (agent.clone(), Instant::now() + ttl),
        );
    }

    /// Drops every holder kept, after a change to agents or tokens.
    fn forget(&self) {
        let mut holders = self.lock();
        holders.generation += 1;
        holders.by_hash.clear();
    }
}

/// A row of [`Storage::token_holder`]'s statement: the agent and when the token expires.
struct Holder {
    agent: Agent,
    expires_at: Option<i64>,
}

impl FromCols for Holder {
    fn from_cols<R: Cols>(row: &R) -> std::result::Result<Self, sqlx::Error> {
        Ok(Holder {
            agent: Agent::from_cols(row)?,
            expires_at: row.col("token_expires_at")?,
        })
    }
}

impl Storage {
    /// Creates an agent with extensions and a first token (given as its hash).
    pub async fn create_agent(
        &self,
        name: &str,
        role: Role,
        extensions: &[String],
        token_hash: &str,
        token_expires_at: Option<i64>,
    ) -> Result<Agent> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query("INSERT INTO agents (name, role, status, created_at) VALUES ($1, $2, 'away', $3) RETURNING id")
            .bind(name)
            .bind(role.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let id: i64 = row.try_get("id")?;
        for ext in extensions {
            sqlx::query("INSERT INTO agent_extensions (extension, agent_id) VALUES ($1, $2)")
                .bind(ext)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO tokens (agent_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(token_hash)
            .bind(now)
            .bind(token_expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.agent(id).await
    }

    /// Issues one more token for an agent.
    pub async fn add_token(
        &self,
        agent_id: i64,
        token_hash: &str,
        expires_at: Option<i64>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO tokens (agent_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(agent_id)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// Revokes every token of an agent.
    pub async fn revoke_tokens(&self, agent_id: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms())
        .bind(agent_id)
        .execute(&self.pool)
        .await?;
        self.holders.forget();
        Ok(done.rows_affected())
    }

    pub async fn agent(&self, id: i64) -> Result<Agent> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        let mut agent = Agent::from_cols(&row)?;
        agent.extensions = self.extensions_of(id).await?;
        Ok(agent)
    }

    pub async fn agent_by_name(&self, name: &str) -> Result<Agent> {
        let row = sqlx::query("SELECT id FROM agents WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StorageError::NotFound)?;
        self.agent(row.try_get("id")?).await
    }

    pub async fn extensions_of(&self, id: i64) -> Result<Vec<String>> {
        let extensions: Vec<First<String>> = self
            .select(
                "SELECT extension FROM agent_extensions WHERE agent_id = $1 ORDER BY extension",
                &[Arg::Int(id)],
            )
            .await?;
        Ok(extensions.into_iter().map(|e| e.0).collect())
    }

    pub async fn list_agents(&self) -> Result<Vec<Agent>> {
        let mut agents: Vec<Agent> = self
            .select("SELECT * FROM agents ORDER BY name", &[])
            .await?;
        let exts =
            sqlx::query("SELECT extension, agent_id FROM agent_extensions ORDER BY extension")
                .fetch_all(&self.pool)
                .await?;
        for row in &exts {
            let id: i64 = row.try_get("agent_id")?;
            if let Some(a) = agents.iter_mut().find(|a| a.id == id) {
                a.extensions.push(row.try_get("extension")?);
            }
        }
        Ok(agents)
    }

    /// The agent behind a token hash, if the token is neither expired nor revoked and the agent is enabled.
    pub async fn agent_by_token_hash(&self, token_hash: &str) -> Result<Option<Agent>> {
        match self.token_holder(token_hash).await? {
            Some(mut agent) => {
                agent.extensions = self.extensions_of(agent.id).await?;
                Ok(Some(agent))
            }
            None => Ok(None),
        }
    }

    /// [`Storage::agent_by_token_hash`] in one statement, for authenticating requests: the agent
    /// comes without its extensions (`extensions` is empty), which a request that shows them
    /// loads with [`Storage::extensions_of`]. A holder found is kept in memory for a moment
    /// ([`TOKEN_HOLDER_TTL`]).
    pub async fn token_holder(&self, token_hash: &str) -> Result<Option<Agent>> {
        let generation = match self.holders.get(token_hash) {
            Ok(agent) => return Ok(Some(agent)),
            Err(generation) => generation,
        };
        let found: Vec<Holder> = self
            .select(
                "SELECT a.*, t.expires_at AS token_expires_at FROM tokens t JOIN agents a ON a.id = t.agent_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
                 AND a.disabled = 0",
                &[Arg::Text(token_hash), Arg::Int(now_ms())],
            )
            .await?;
        Ok(found.into_iter().next().map(|holder| {
            self.holders
                .keep(token_hash, &holder.agent, holder.expires_at, generation);
            holder.agent
        }))
    }

    pub async fn set_agent_status(&self, id: i64, status: &str) -> Result<()> {
        sqlx::query("UPDATE agents SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.holders.forget();
        Ok(())
    }

    pub async fn set_agent_extensions(&self, id: i64, extensions: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM agent_extensions WHERE agent_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for ext in extensions {
            sqlx::query("INSERT INTO agent_extensions (extension, agent_id) VALUES ($1, $2)")
                .bind(ext)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_agent_role(&self, id: i64, role: Role) -> Result<()> {
        let done = sqlx::query("UPDATE agents SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.holders.forget();
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    pub async fn set_agent_disabled(&self, id: i64, disabled: bool) -> Result<()> {
        let done = sqlx::query("UPDATE agents SET disabled = $1 WHERE id = $2")
            .bind(disabled as i64)
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.holders.forget();
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    pub async fn count_agents(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM agents")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(name: &str) -> Agent {
        Agent {
            id: 1,
            name: name.into(),
            role: Role::Pbx,
            status: "away".into(),
            extensions: Vec::new(),
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn a_holder_is_kept_until_forgotten() {
        let cache = HolderCache::default();
        let generation = cache.get("h").unwrap_err();
        cache.keep("h", &agent("pbx"), None, generation);
        assert_eq!(cache.get("h").unwrap().name, "pbx");
        cache.forget();
        assert!(cache.get("h").is_err());
    }

    #[test]
    fn a_lookup_begun_before_a_change_keeps_nothing() {
        let cache = HolderCache::default();
        let generation = cache.get("h").unwrap_err();
        cache.forget();
        cache.keep("h", &agent("pbx"), None, generation);
        let now = cache.get("h").unwrap_err();
        assert_ne!(now, generation);
    }

    #[test]
    fn a_holder_is_not_kept_past_its_tokens_expiry() {
        let cache = HolderCache::default();
        let generation = cache.get("h").unwrap_err();
        cache.keep("h", &agent("pbx"), Some(now_ms() - 1), generation);
        assert!(cache.get("h").is_err());
        cache.keep("h", &agent("pbx"), Some(now_ms() + 60_000), generation);
        assert!(cache.get("h").is_ok());
    }
}
