//! The attachment folder: the bytes of files sent in chats, one file per attachment id under
//! its tenant's folder. A file is written to a temporary name and flushed to disk before it
//! takes its final name, and it takes that name before the store records it, so a recorded
//! attachment always has its bytes (a crash in between leaves at worst an unrecorded file).

use parley_domain::{AttachmentId, TenantId};
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// The attachment folder (cheap to clone).
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
}

/// Bytes written and flushed under a temporary name, not yet an attachment.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
}

impl Files {
    #[must_use]
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn tenant_dir(&self, tenant: TenantId) -> PathBuf {
        self.root.join(tenant.to_string())
    }

    fn path(&self, tenant: TenantId, id: AttachmentId) -> PathBuf {
        self.tenant_dir(tenant).join(id.to_string())
    }

    /// Writes `bytes` under a fresh temporary name in the tenant's folder and flushes them.
    ///
    /// # Errors
    /// IO failures (the partial file is removed).
    pub async fn stage(&self, tenant: TenantId, bytes: &[u8]) -> io::Result<Staged> {
        let dir = self.tenant_dir(tenant);
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(format!(".upload-{}", uuid::Uuid::new_v4()));
        let written = async {
            let mut f = tokio::fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
            f.write_all(bytes).await?;
            f.sync_all().await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        Ok(Staged { path })
    }

    /// Gives staged bytes their attachment's name, durably (the folder entry is flushed too).
    ///
    /// # Errors
    /// IO failures.
    pub async fn commit(&self, staged: Staged, tenant: TenantId, id: AttachmentId) -> io::Result<()> {
        let target = self.path(tenant, id);
        tokio::fs::rename(&staged.path, &target).await?;
        sync_dir(self.tenant_dir(tenant)).await
    }

    /// Drops staged bytes that will not become an attachment.
    pub async fn discard(&self, staged: Staged) {
        if let Err(e) = tokio::fs::remove_file(&staged.path).await {
            tracing::warn!(error = %e, "staged upload not removed");
        }
    }

    /// Whether the attachment's bytes are in place.
    pub async fn exists(&self, tenant: TenantId, id: AttachmentId) -> bool {
        tokio::fs::try_exists(self.path(tenant, id)).await.unwrap_or(false)
    }

    /// The attachment's bytes.
    ///
    /// # Errors
    /// `NotFound` when they are missing; other IO failures.
    pub async fn read(&self, tenant: TenantId, id: AttachmentId) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(tenant, id)).await
    }
}

async fn sync_dir(dir: PathBuf) -> io::Result<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(Path::new(&dir))?.sync_all())
        .await
        .map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn staged_bytes_become_the_attachment_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path().to_path_buf());
        let (tenant, id) = (TenantId::from_uuid(Uuid::new_v4()), AttachmentId::from_uuid(Uuid::new_v4()));
        let staged = files.stage(tenant, b"%PDF-1.7").await.unwrap();
        assert!(!files.exists(tenant, id).await);
        files.commit(staged, tenant, id).await.unwrap();
        assert_eq!(files.read(tenant, id).await.unwrap(), b"%PDF-1.7");

        let other = AttachmentId::from_uuid(Uuid::new_v4());
        let staged = files.stage(tenant, b"nope").await.unwrap();
        files.discard(staged).await;
        assert!(!files.exists(tenant, other).await);
        let left: Vec<_> = std::fs::read_dir(dir.path().join(tenant.to_string())).unwrap().collect();
        assert_eq!(left.len(), 1, "only the committed file remains");
    }

    #[tokio::test]
    async fn tenants_have_folders_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path().to_path_buf());
        let (a, b, id) = (
            TenantId::from_uuid(Uuid::new_v4()),
            TenantId::from_uuid(Uuid::new_v4()),
            AttachmentId::from_uuid(Uuid::new_v4()),
        );
        let staged = files.stage(a, b"x").await.unwrap();
        files.commit(staged, a, id).await.unwrap();
        assert!(files.exists(a, id).await);
        assert!(!files.exists(b, id).await);
        assert_eq!(files.read(b, id).await.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
