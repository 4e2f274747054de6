//! The agent directory in memory: names and extensions to agent ids, for the ingress path.
//!
//! Call events name agents by name or extension; looking each up in the database on the hot path
//! would cost a round trip per event. The directory is reloaded whenever agents change through the
//! API or CLI, and periodically, so a change made by another process is seen within a minute.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::auth::Role;
use crate::storage::agents::Agent;
use crate::storage::{Result, Storage};

#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub extensions: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Default)]
struct Maps {
    by_id: HashMap<i64, DirectoryEntry>,
    by_name: HashMap<String, i64>,
    by_extension: HashMap<String, i64>,
    /// The ticket of the reload these maps were read by.
    ticket: u64,
}

#[derive(Debug, Default)]
pub struct Directory {
    maps: RwLock<Maps>,
    /// Reloads overlap (the periodic one, one per agent change). Each takes a ticket before it
    /// reads the agents and installs what it read only if no later-started reload has installed
    /// first: otherwise a slow reload that read before an agent was added could land after a quick
    /// one that read after, and leave the agent out until the next reload.
    tickets: AtomicU64,
}

impl Directory {
    pub async fn load(storage: &Storage) -> Result<Directory> {
        let d = Directory::default();
        d.reload(storage).await?;
        Ok(d)
    }

    pub async fn reload(&self, storage: &Storage) -> Result<()> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let agents = storage.list_agents().await?;
        self.install(ticket, agents);
        Ok(())
    }

    /// Replaces the maps with agents read under `ticket`, unless a later-started read is in.
    fn install(&self, ticket: u64, agents: Vec<Agent>) {
        let mut current = self.maps.write().unwrap_or_else(|p| p.into_inner());
        if ticket < current.ticket {
            return;
        }
        let mut maps = Maps {
            ticket,
            ..Maps::default()
        };
        for a in agents {
            maps.by_name.insert(a.name.to_lowercase(), a.id);
            for e in &a.extensions {
                maps.by_extension.insert(e.clone(), a.id);
            }
            maps.by_id.insert(
                a.id,
                DirectoryEntry {
                    id: a.id,
                    name: a.name,
                    role: a.role,
                    extensions: a.extensions,
                    disabled: a.disabled,
                },
            );
        }
        *current = maps;
    }

    /// An agent by extension first (what PBXs report), then by name (case-insensitive).
    pub fn resolve(&self, name_or_extension: &str) -> Option<i64> {
        let key = name_or_extension.trim();
        let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
        maps.by_extension
            .get(key)
            .or_else(|| maps.by_name.get(&key.to_lowercase()))
            .copied()
            .filter(|id| maps.by_id.get(id).is_some_and(|e| !e.disabled))
    }

    pub fn get(&self, id: i64) -> Option<DirectoryEntry> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .get(&id)
            .cloned()
    }

    pub fn name_of(&self, id: i64) -> Option<String> {
        self.get(id).map(|e| e.name)
    }

    pub fn id_by_name(&self, name: &str) -> Option<i64> {
        self.maps
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .by_name
            .get(&name.trim().to_lowercase())
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: i64, extension: &str) -> Agent {
        Agent {
            id,
            name: format!("agent{id}"),
            role: Role::Agent,
            status: "ready".into(),
            extensions: vec![extension.into()],
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn a_reload_that_read_earlier_cannot_undo_one_that_read_later() {
        let directory = Directory::default();
        // Reload 1 read before agent 2 existed; reload 2 read after and finished first.
        directory.install(2, vec![agent(1, "1001"), agent(2, "1002")]);
        directory.install(1, vec![agent(1, "1001")]);
        assert_eq!(directory.resolve("1002"), Some(2));
        // A later reload still replaces the maps, removals included.
        directory.install(3, vec![agent(2, "1002")]);
        assert_eq!(directory.resolve("1001"), None);
        assert_eq!(directory.resolve("1002"), Some(2));
    }
}
