//! Agents (people and the PBX) with their extensions and bearer tokens.
//!
//! Tokens are stored as SHA-256 hashes only; the clear token exists once, when it is issued.

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

    async fn extensions_of(&self, id: i64) -> Result<Vec<String>> {
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
        let found: Vec<Agent> = self
            .select(
                "SELECT a.* FROM tokens t JOIN agents a ON a.id = t.agent_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
                 AND a.disabled = 0",
                &[Arg::Text(token_hash), Arg::Int(now_ms())],
            )
            .await?;
        match found.into_iter().next() {
            Some(mut agent) => {
                agent.extensions = self.extensions_of(agent.id).await?;
                Ok(Some(agent))
            }
            None => Ok(None),
        }
    }

    pub async fn set_agent_status(&self, id: i64, status: &str) -> Result<()> {
        sqlx::query("UPDATE agents SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
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
