//! Plugin registry queries.

use sqlx::Row;

use sqlx::SqliteConnection;

use super::SqliteStore;
use super::workflows::apply_workflow_in;
use crate::sandbox::PluginInfo;
use crate::store::{
    Added, Applied, ExecutionStatus, NewWorkflow, PluginPin, PluginRecord, Plugins, StoreError,
    WorkflowOwner, now_rfc3339,
};

use super::query_err;
use crate::store::pins::refuse_if_in_use;
use crate::store::rows::plugin_record;

#[async_trait::async_trait]
impl Plugins for SqliteStore {
    async fn register_plugin(
        &self,
        info: &PluginInfo,
        sha256: &str,
        bytes: &[u8],
        workflows: &[NewWorkflow<'_>],
        now_ms: i64,
    ) -> Result<(Added, Vec<Applied>), StoreError> {
        let doing = "registering a plugin";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))?;
        let added = add_plugin_in(&mut tx, info, sha256, bytes).await?;
        let owner = WorkflowOwner::Plugin(info.name.clone());
        let mut applied = Vec::with_capacity(workflows.len());
        for workflow in workflows {
            applied.push(apply_workflow_in(&mut tx, workflow, &owner, now_ms).await?);
        }
        tx.commit().await.map_err(query_err(doing))?;
        Ok((added, applied))
    }

    async fn list_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, version, sha256, info, size, added_at FROM plugins
             ORDER BY name, added_at",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(query_err("listing plugins"))?;
        rows.iter().map(plugin_record).collect()
    }

    async fn plugin(&self, reference: &str) -> Result<Option<(PluginRecord, Vec<u8>)>, StoreError> {
        let (name, version) = match reference.split_once('@') {
            Some((name, version)) => (name, Some(version)),
            None => (reference, None),
        };
        let row = sqlx::query(
            "SELECT name, version, sha256, info, size, added_at, bytes FROM plugins
             WHERE name = ?1 AND (?2 IS NULL OR version = ?2)
             ORDER BY added_at DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("looking up a plugin"))?;
        let Some(row) = row else { return Ok(None) };
        let bytes: Vec<u8> = row
            .try_get("bytes")
            .map_err(query_err("reading plugin bytes"))?;
        Ok(Some((plugin_record(&row)?, bytes)))
    }
    async fn resolve_plugin(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<PluginPin>, StoreError> {
        let row = sqlx::query(
            "SELECT version, sha256 FROM plugins
             WHERE name = ?1 AND (?2 IS NULL OR version = ?2
                                  OR substr(version, 1, length(?2) + 1) = ?2 || '.')
             ORDER BY version = ?2 DESC, added_at DESC LIMIT 1",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.reader)
        .await
        .map_err(query_err("resolving a plugin version"))?;
        let e = || query_err("resolving a plugin version");
        row.map(|row| {
            Ok(PluginPin {
                version: row.try_get("version").map_err(e())?,
                sha256: row.try_get("sha256").map_err(e())?,
            })
        })
        .transpose()
    }

    async fn remove_plugin(&self, name: &str, version: &str) -> Result<bool, StoreError> {
        let doing = "removing a plugin";
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(query_err(doing))?;
        let in_use: (i64, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(e.id) FROM executions e
             WHERE e.status = ?3 AND EXISTS (
                 SELECT 1 FROM json_each(e.plugins) j
                 WHERE (j.key = ?1 OR substr(j.key, 1, length(?1) + 1) = ?1 || '@')
                   AND json_extract(j.value, '$.version') = ?2)",
        )
        .bind(name)
        .bind(version)
        .bind(ExecutionStatus::Running.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        refuse_if_in_use(name, version, in_use)?;
        let removed = sqlx::query("DELETE FROM plugins WHERE name = ? AND version = ?")
            .bind(name)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?
            .rows_affected();
        tx.commit().await.map_err(query_err(doing))?;
        Ok(removed > 0)
    }
}

/// Stores a plugin's bytes in `conn`'s transaction (see `Store::add_plugin`).
async fn add_plugin_in(
    conn: &mut SqliteConnection,
    info: &PluginInfo,
    sha256: &str,
    bytes: &[u8],
) -> Result<Added, StoreError> {
    let doing = "registering a plugin";
    let existing: Option<String> =
        sqlx::query_scalar("SELECT sha256 FROM plugins WHERE name = ? AND version = ?")
            .bind(&info.name)
            .bind(&info.version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err(doing))?;
    match existing {
        Some(existing) if existing == sha256 => return Ok(Added::Unchanged),
        Some(existing) => {
            return Err(StoreError::PluginConflict {
                name: info.name.clone(),
                version: info.version.clone(),
                existing,
            });
        }
        None => {}
    }
    let info_json = serde_json::to_string(info).map_err(|e| StoreError::Corrupt {
        what: "plugin info",
        reason: e.to_string(),
    })?;
    sqlx::query(
        "INSERT INTO plugins (name, version, sha256, info, size, bytes, added_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&info.name)
    .bind(&info.version)
    .bind(sha256)
    .bind(info_json)
    .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
    .bind(bytes)
    .bind(now_rfc3339())
    .execute(&mut *conn)
    .await
    .map_err(query_err(doing))?;
    Ok(Added::New)
}
