//! The agent directory in memory: names and extensions to agent ids, for the ingress path.
//!
//! Call events name agents by name or extension; looking each up in the database on the hot path
//! would cost a round trip per event. The directory is reloaded whenever agents change through the
//! API or CLI, and periodically, so a change made by another process is seen within a minute.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::auth::Role;
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
}

#[derive(Debug, Default)]
pub struct Directory {
    maps: RwLock<Maps>,
}

impl Directory {
    pub async fn load(storage: &Storage) -> Result<Directory> {
        let d = Directory::default();
        d.reload(storage).await?;
        Ok(d)
    }

    pub async fn reload(&self, storage: &Storage) -> Result<()> {
        let agents = storage.list_agents().await?;
        let mut maps = Maps::default();
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
        *self.maps.write().unwrap_or_else(|p| p.into_inner()) = maps;
        Ok(())
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
