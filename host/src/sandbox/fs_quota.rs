//! Disk quotas on writable directory grants, and no escaping symlinks.
//!
//! wasmtime-wasi lets a guest write as much as the host's disk holds into a
//! writable preopen. This module puts a metering layer between the guest
//! and wasmtime-wasi's `wasi:filesystem/types` implementation: [`add_to_linker`]
//! shadows that interface (and `wasi:filesystem/preopens`) in the linker
//! with [`QuotaFs`], which delegates every call to wasmtime-wasi's own
//! implementation and charges, before the call, what it would add to a
//! writable grant.
//!
//! # What is counted, per writable grant, per attempt
//! - **Bytes**: by how much files grow. A write of `n` bytes at `offset` to
//!   a file of size `s` costs `max(0, offset + n - s)`, so appending costs
//!   `n`, overwriting is free, and a write far past the end pays for the
//!   hole it leaves. `set-size` costs its growth. This covers
//!   `descriptor.write` (`pwrite`), and the output streams of
//!   `write-via-stream` / `append-via-stream` (which wasi-libc uses for
//!   `write`): each stream is wrapped in a [`MeteredStream`] that charges
//!   `write`, `write-zeroes` and `blocking-write-and-flush` (and so
//!   `splice`, which writes through them). The file's size is read with one
//!   `fstat` per charged write.
//! - **Files**: directory entries created: `open-at` with `create` of a
//!   path that did not exist, `create-directory-at`, `symlink-at`,
//!   `link-at`.
//!
//! Nothing is given back: unlinking or truncating does not refund, so the
//! counters only grow. They bound how much an attempt can leave on the
//! disk, not how much I/O it does: overwriting, syncing, renaming and
//! unlinking are free (the attempt's timeout bounds those).
//! A charge that does not fit is refused whole and nothing of that call is
//! written, so a grant never grows by more than its limit. Never a trap:
//! the guest gets an error and decides what to do. The WASI error is
//! `insufficient-space`: returned by `descriptor.write`, `set-size`,
//! `open-at` and the other creates, and by `write-via-stream` /
//! `append-via-stream` for a stream through which not even one byte would
//! fit (e.g. after seeking far past the end); a refused stream write fails
//! with `last-operation-failed`, whose `filesystem-error-code` is
//! `insufficient-space`, and the stream is closed, as WASI says it is after
//! that error. Through wasi-libc (Rust's std on wasm32-wasip2) the guest
//! sees `ENOSPC` ("No space left on device") for all of these except the
//! refused stream write: wasi-libc 30 turns every failed stream write into
//! `EIO` without asking `filesystem-error-code`, so `write()` on an open
//! file that runs out of quota fails with `EIO`. The attempt's log line
//! and [`GrantUsage`] say what happened either way.
//!
//! Moving entries between two writable grants (`rename-at`, `link-at`) would
//! carry bytes and files past the other grant's meter, so it is refused with
//! `cross-device` (`EXDEV`), as between two file systems.
//!
//! # Which grant a descriptor belongs to
//! wasmtime-wasi's descriptors do not say which preopen they came from, so
//! [`FsQuota`] maps descriptor handles to grants: the preopens as the guest
//! gets them, then every descriptor `open-at` returns inherits its parent's
//! grant; `drop` forgets it. A writable descriptor that is not in the map
//! (which the interface gives no way to obtain) is refused, so a gap here
//! fails closed.
//!
//! # Symlinks
//! `symlink-at` is refused with `not-permitted` if the target is absolute or
//! has a `..` component (`/` and `\` both count as separators). A target
//! without either only names entries below the directory the link is in,
//! and that directory is inside the grant: wasmtime-wasi resolves every
//! guest path within the preopen, and cross-grant moves are refused. A
//! link with a `..` target that the operator left in the grant could point
//! outside once moved higher up (`a/b/l -> ../x` renamed to `l`), so
//! `rename-at` and `link-at` of a symlink whose target is absolute or has a
//! `..` component are refused with `not-permitted` too. Moving a
//! *directory* that holds such a link higher up is not checked (that would
//! mean walking its subtree): operators must not leave links with `..` or
//! absolute targets in writable grants. (wasmtime-wasi already refuses to
//! *follow* a link out of the preopen; these rules are for whoever reads
//! the directory afterwards.)
//!
//! # Cost
//! Attempts without writable grants pay nothing but an empty `Vec` and an
//! empty `HashMap` (neither allocates). With writable grants, each
//! descriptor costs one map entry, each create one extra `stat-at`, each
//! charged write one `fstat` and two atomic operations.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::FsPerms;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::{preopens, types};
use wasmtime_wasi::p2::bindings::io::streams::Error as StreamErrorResource;
use wasmtime_wasi::p2::{
    DynOutputStream, FsError, FsResult, OutputStream, Pollable, ReaddirIterator, StreamError,
    StreamResult,
};

use super::grants::Grants;
use types::ErrorCode;

/// What one writable grant took during an attempt, for the attempt's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantUsage {
    /// The grant's guest path, e.g. `/out`.
    pub guest: String,
    /// Bytes by which the grant's files grew (see `DirGrant::max_bytes`).
    pub bytes_written: u64,
    /// Directory entries created.
    pub files_created: u64,
    /// The byte quota that was in force.
    pub max_bytes: u64,
    /// The file quota that was in force.
    pub max_files: u64,
    /// Whether a write was refused for lack of byte quota.
    pub bytes_limit_hit: bool,
    /// Whether a create was refused for lack of file quota.
    pub files_limit_hit: bool,
}

impl GrantUsage {
    /// The line the host adds to the attempt's logs when a limit was hit.
    pub(crate) fn limit_message(&self) -> Option<String> {
        let which = match (self.bytes_limit_hit, self.files_limit_hit) {
            (false, false) => return None,
            (true, false) => format!("max_bytes = {}", self.max_bytes),
            (false, true) => format!("max_files = {}", self.max_files),
            (true, true) => format!(
                "max_bytes = {} and max_files = {}",
                self.max_bytes, self.max_files
            ),
        };
        Some(format!(
            "[corral host] disk quota: grant {} reached {which}; the attempt wrote {} bytes and created {} files there, and the guest got insufficient-space for what did not fit",
            self.guest, self.bytes_written, self.files_created
        ))
    }
}

/// Why a write or create was refused. Carried inside stream errors so that
/// `filesystem-error-code` can tell the guest `insufficient-space`.
#[derive(Debug, thiserror::Error)]
#[error("disk quota of grant {guest} exceeded")]
struct QuotaExceeded {
    guest: String,
}

/// The counters of one writable grant. Shared (`Arc`) between [`FsQuota`]
/// and the streams it wrapped, which live in the resource table.
#[derive(Debug)]
struct Meter {
    guest: String,
    max_bytes: u64,
    max_files: u64,
    bytes: AtomicU64,
    files: AtomicU64,
    bytes_hit: AtomicBool,
    files_hit: AtomicBool,
}

impl Meter {
    /// Adds `n` to `counter` if the sum stays within `max`; otherwise
    /// records the hit and refuses. The store runs one host call at a time,
    /// but streams may be written from background tasks' results, so the
    /// update is atomic anyway.
    fn charge(counter: &AtomicU64, max: u64, hit: &AtomicBool, n: u64) -> bool {
        let ok = counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            })
            .is_ok();
        if !ok {
            hit.store(true, Ordering::Release);
        }
        ok
    }

    fn charge_bytes(&self, n: u64) -> Result<(), QuotaExceeded> {
        if n == 0 || Self::charge(&self.bytes, self.max_bytes, &self.bytes_hit, n) {
            Ok(())
        } else {
            Err(self.exceeded())
        }
    }

    /// Whether `n` more bytes would fit, without charging them; a refusal
    /// counts as a hit.
    fn fits(&self, n: u64) -> Result<(), QuotaExceeded> {
        let used = self.bytes.load(Ordering::Acquire);
        if used
            .checked_add(n)
            .is_some_and(|total| total <= self.max_bytes)
        {
            Ok(())
        } else {
            self.bytes_hit.store(true, Ordering::Release);
            Err(self.exceeded())
        }
    }

    fn refund_bytes(&self, n: u64) {
        // Only ever refunds what this call charged a moment ago.
        self.bytes.fetch_sub(n, Ordering::AcqRel);
    }

    fn charge_file(&self) -> Result<(), QuotaExceeded> {
        if Self::charge(&self.files, self.max_files, &self.files_hit, 1) {
            Ok(())
        } else {
            Err(self.exceeded())
        }
    }

    fn refund_file(&self) {
        self.files.fetch_sub(1, Ordering::AcqRel);
    }

    fn exceeded(&self) -> QuotaExceeded {
        QuotaExceeded {
            guest: self.guest.clone(),
        }
    }

    fn usage(&self) -> GrantUsage {
        GrantUsage {
            guest: self.guest.clone(),
            bytes_written: self.bytes.load(Ordering::Acquire),
            files_created: self.files.load(Ordering::Acquire),
            max_bytes: self.max_bytes,
            max_files: self.max_files,
            bytes_limit_hit: self.bytes_hit.load(Ordering::Acquire),
            files_limit_hit: self.files_hit.load(Ordering::Acquire),
        }
    }
}

/// The quota state of one attempt: a meter per writable grant and which
/// descriptor belongs to which grant.
#[derive(Debug, Default)]
pub(crate) struct FsQuota {
    meters: Vec<Arc<Meter>>,
    /// Descriptor handle (`Resource::rep`) -> index into `meters`. Only
    /// descriptors under writable grants are here.
    grant_of: HashMap<u32, usize>,
}

impl FsQuota {
    /// Fresh counters for the writable grants of `grants`.
    pub(crate) fn new(grants: &Grants) -> Self {
        let meters = grants
            .dirs
            .iter()
            .filter(|dir| dir.writable)
            .map(|dir| {
                Arc::new(Meter {
                    guest: dir.guest.clone(),
                    max_bytes: dir.byte_limit(),
                    max_files: dir.file_limit(),
                    bytes: AtomicU64::new(0),
                    files: AtomicU64::new(0),
                    bytes_hit: AtomicBool::new(false),
                    files_hit: AtomicBool::new(false),
                })
            })
            .collect();
        Self {
            meters,
            grant_of: HashMap::new(),
        }
    }

    /// What each writable grant took, in grant order.
    pub(crate) fn usage(&self) -> Vec<GrantUsage> {
        self.meters.iter().map(|m| m.usage()).collect()
    }
}

/// The store data the metered filesystem needs: wasmtime-wasi's filesystem
/// view and the attempt's [`FsQuota`].
pub(crate) trait QuotaFsView: Send {
    /// Borrows both at once.
    fn quota_fs(&mut self) -> QuotaFs<'_>;
}

/// `wasi:filesystem` as the guest sees it: wasmtime-wasi's implementation
/// behind the quota checks. See the [module docs](self).
pub(crate) struct QuotaFs<'a> {
    /// wasmtime-wasi's view, which does the actual work.
    pub(crate) fs: WasiFilesystemCtxView<'a>,
    /// The attempt's counters.
    pub(crate) quota: &'a mut FsQuota,
}

struct HasQuotaFs;

impl HasData for HasQuotaFs {
    type Data<'a> = QuotaFs<'a>;
}

/// Replaces `wasi:filesystem/types` and `wasi:filesystem/preopens`, which
/// `wasmtime_wasi::p2::add_to_linker_async` must have added already, with
/// the metered versions. Shadowing is allowed only for these two calls.
pub(crate) fn add_to_linker<T: QuotaFsView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = types::add_to_linker::<T, HasQuotaFs>(linker, T::quota_fs)
        .and_then(|()| preopens::add_to_linker::<T, HasQuotaFs>(linker, T::quota_fs));
    linker.allow_shadowing(false);
    result
}

fn quota_error(_: QuotaExceeded) -> FsError {
    ErrorCode::InsufficientSpace.into()
}

/// Gives back the file charged by [`QuotaFs::charge_file`] if the create
/// failed, and passes the result on.
fn refund_file_if_failed<R>(meter: Option<Arc<Meter>>, result: FsResult<R>) -> FsResult<R> {
    if result.is_err()
        && let Some(meter) = meter
    {
        meter.refund_file();
    }
    result
}

/// Whether a symlink with this target could point outside the directory
/// tree it is created in: an absolute target or a `..` component.
fn escaping_target(target: &str) -> bool {
    target.starts_with(['/', '\\']) || target.split(['/', '\\']).any(|part| part == "..")
}

/// The size of `file`, or 0 if it cannot be read: charging as if the file
/// were empty can only charge more.
fn file_size(file: &File) -> u64 {
    file.metadata().map_or(0, |m| m.len())
}

/// What writing `len` bytes at `offset` adds to a file of size `size`.
fn growth(size: u64, offset: u64, len: u64) -> u64 {
    // Writing nothing grows nothing, wherever it "is".
    if len == 0 {
        return 0;
    }
    offset.saturating_add(len).saturating_sub(size)
}

impl QuotaFs<'_> {
    /// The meter of the grant `fd` belongs to. `Ok(None)` for descriptors
    /// of read-only grants (wasmtime-wasi refuses their writes itself); an
    /// error for a writable descriptor we do not know, so that a gap in the
    /// tracking fails closed.
    fn meter(&self, fd: &Resource<Descriptor>) -> FsResult<Option<(usize, Arc<Meter>)>> {
        if let Some(&index) = self.quota.grant_of.get(&fd.rep())
            && let Some(meter) = self.quota.meters.get(index)
        {
            return Ok(Some((index, meter.clone())));
        }
        let perms = match self.fs.table.get(fd)? {
            Descriptor::File(f) => f.perms,
            Descriptor::Dir(d) => d.perms,
        };
        if perms == FsPerms::ReadWrite {
            return Err(ErrorCode::NotPermitted.into());
        }
        Ok(None)
    }

    /// The OS file behind a file descriptor, for its size.
    fn os_file(&self, fd: &Resource<Descriptor>) -> FsResult<Arc<File>> {
        match self.fs.table.get(fd)? {
            Descriptor::File(f) => Ok(f.file.clone()),
            Descriptor::Dir(_) => Err(ErrorCode::BadDescriptor.into()),
        }
    }

    /// Refuses moving entries between two different writable grants.
    fn same_grant(&self, a: &Resource<Descriptor>, b: &Resource<Descriptor>) -> FsResult<()> {
        match (self.meter(a)?, self.meter(b)?) {
            (Some((x, _)), Some((y, _))) if x != y => Err(ErrorCode::CrossDevice.into()),
            _ => Ok(()),
        }
    }

    /// Refuses, with `not-permitted`, moving or hard-linking `path` under a
    /// writable `fd` when it is a symlink whose target is absolute or has a
    /// `..` component: one the operator left there, harmless where it is,
    /// could point outside the grant from higher up.
    async fn refuse_moving_escaping_link(
        &mut self,
        fd: &Resource<Descriptor>,
        path: &str,
    ) -> FsResult<()> {
        if self.meter(fd)?.is_none() {
            return Ok(());
        }
        // Not a symlink (or not there): readlink fails, and the call goes
        // on to say what it says.
        let target = types::HostDescriptor::readlink_at(
            &mut self.fs,
            Resource::new_borrow(fd.rep()),
            path.to_owned(),
        )
        .await;
        match target {
            Ok(target) if escaping_target(&target) => Err(ErrorCode::NotPermitted.into()),
            _ => Ok(()),
        }
    }

    /// Charges one directory entry to `fd`'s grant, before a call that
    /// creates one under `fd`; give the meter to [`refund_file_if_failed`].
    fn charge_file(&self, fd: &Resource<Descriptor>) -> FsResult<Option<Arc<Meter>>> {
        let Some((_, meter)) = self.meter(fd)? else {
            return Ok(None);
        };
        meter.charge_file().map_err(quota_error)?;
        Ok(Some(meter))
    }

    /// Refuses, with `insufficient-space`, a stream at `position` (`None`:
    /// appending) through which not even a one-byte write would fit, e.g.
    /// after seeking far past the end. The refusal could wait for the first
    /// write, but wasi-libc turns every failed stream write into `EIO`,
    /// while a failed `write-via-stream` reaches the guest as `ENOSPC`.
    fn refuse_useless_stream(
        &self,
        fd: &Resource<Descriptor>,
        position: Option<u64>,
    ) -> FsResult<()> {
        let Some((_, meter)) = self.meter(fd)? else {
            return Ok(());
        };
        // Not a file: wasmtime-wasi reports that itself.
        let Ok(file) = self.os_file(fd) else {
            return Ok(());
        };
        let smallest = match position {
            None => 1,
            Some(position) => growth(file_size(&file), position, 1),
        };
        meter.fits(smallest).map_err(quota_error)
    }

    /// Wraps the stream behind `stream` (just made by wasmtime-wasi for
    /// `fd`) in a [`MeteredStream`], if `fd` is under a writable grant.
    fn metered_stream(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
        position: Option<u64>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some((_, meter)) = self.meter(fd)? else {
            return Ok(stream);
        };
        let file = self.os_file(fd)?;
        let inner = self.fs.table.delete(stream)?;
        let metered: DynOutputStream = Box::new(MeteredStream {
            inner,
            file,
            position,
            meter,
            closed: false,
        });
        Ok(self.fs.table.push(metered)?)
    }
}

impl preopens::Host for QuotaFs<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.fs)?;
        for (fd, name) in &dirs {
            if let Some(index) = self.quota.meters.iter().position(|m| &m.guest == name) {
                self.quota.grant_of.insert(fd.rep(), index);
            }
        }
        Ok(dirs)
    }
}

impl types::Host for QuotaFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<StreamErrorResource>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        if self
            .fs
            .table
            .get(&err)?
            .downcast_ref::<QuotaExceeded>()
            .is_some()
        {
            return Ok(Some(ErrorCode::InsufficientSpace));
        }
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl types::HostDescriptor for QuotaFs<'_> {
    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<wasmtime_wasi::p2::DynInputStream>> {
        self.fs.read_via_stream(fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.refuse_useless_stream(&fd, Some(offset))?;
        let stream = self
            .fs
            .write_via_stream(Resource::new_borrow(fd.rep()), offset)?;
        self.metered_stream(&fd, stream, Some(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        self.refuse_useless_stream(&fd, None)?;
        let stream = self.fs.append_via_stream(Resource::new_borrow(fd.rep()))?;
        self.metered_stream(&fd, stream, None)
    }

    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.fs.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorFlags> {
        self.fs.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        self.fs.get_type(fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        let Some((_, meter)) = self.meter(&fd)? else {
            return self.fs.set_size(fd, size).await;
        };
        let file = self.os_file(&fd)?;
        let charge = size.saturating_sub(file_size(&file));
        meter.charge_bytes(charge).map_err(quota_error)?;
        let result = self.fs.set_size(fd, size).await;
        if result.is_err() {
            meter.refund_bytes(charge);
        }
        result
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times(fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.fs.read(fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let Some((_, meter)) = self.meter(&fd)? else {
            return self.fs.write(fd, buf, offset).await;
        };
        let file = self.os_file(&fd)?;
        let size = file_size(&file);
        let charge = growth(size, offset, buf.len() as u64);
        meter.charge_bytes(charge).map_err(quota_error)?;
        let result = self.fs.write(fd, buf, offset).await;
        // Keep only what the write really added (a short write adds less).
        let kept = match &result {
            Ok(written) => growth(size, offset, *written),
            Err(_) => 0,
        };
        meter.refund_bytes(charge.saturating_sub(kept));
        result
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<ReaddirIterator>> {
        self.fs.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync(fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        let meter = self.charge_file(&fd)?;
        let result = self.fs.create_directory_at(fd, path).await;
        refund_file_if_failed(meter, result)
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        self.fs.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        self.fs.stat_at(fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.same_grant(&fd, &new_fd)?;
        self.refuse_moving_escaping_link(&fd, &old_path).await?;
        let meter = self.charge_file(&new_fd)?;
        let result = self
            .fs
            .link_at(fd, old_path_flags, old_path, new_fd, new_path)
            .await;
        refund_file_if_failed(meter, result)
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let parent = fd.rep();
        let Some((index, meter)) = self.meter(&fd)? else {
            return self.fs.open_at(fd, path_flags, path, oflags, flags).await;
        };
        // Only a create of a path that does not exist yet makes an entry;
        // re-creating an existing file (`File::create` twice) is free. The
        // stat follows links exactly as the open will.
        let creates = oflags.contains(types::OpenFlags::CREATE)
            && (oflags.contains(types::OpenFlags::EXCLUSIVE)
                || matches!(
                    self.fs
                        .stat_at(Resource::new_borrow(parent), path_flags, path.clone())
                        .await,
                    Err(ref e) if e.downcast_ref() == Some(&ErrorCode::NoEntry)
                ));
        if creates {
            meter.charge_file().map_err(quota_error)?;
        }
        let result = self.fs.open_at(fd, path_flags, path, oflags, flags).await;
        match &result {
            Ok(child) => {
                self.quota.grant_of.insert(child.rep(), index);
            }
            Err(_) if creates => meter.refund_file(),
            Err(_) => {}
        }
        result
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.quota.grant_of.remove(&fd.rep());
        types::HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.fs.readlink_at(fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.fs.remove_directory_at(fd, path).await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.same_grant(&fd, &new_fd)?;
        self.refuse_moving_escaping_link(&fd, &old_path).await?;
        self.fs.rename_at(fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FsResult<()> {
        if escaping_target(&old_path) {
            return Err(ErrorCode::NotPermitted.into());
        }
        let meter = self.charge_file(&fd)?;
        let result = self.fs.symlink_at(fd, old_path, new_path).await;
        refund_file_if_failed(meter, result)
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.fs.unlink_file_at(fd, path).await
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.fs.is_same_object(a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        self.fs.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        self.fs.metadata_hash_at(fd, path_flags, path).await
    }
}

impl types::HostDirectoryEntryStream for QuotaFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<ReaddirIterator>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.fs.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<ReaddirIterator>) -> wasmtime::Result<()> {
        types::HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

/// An output stream of a file under a writable grant: charges each write's
/// growth of the file to the grant before handing it to wasmtime-wasi's
/// stream.
struct MeteredStream {
    inner: DynOutputStream,
    /// The file written, to read its size.
    file: Arc<File>,
    /// Where the next write lands; `None` for an append stream.
    position: Option<u64>,
    meter: Arc<Meter>,
    /// Set once a write was refused: the stream is closed from then on.
    closed: bool,
}

impl MeteredStream {
    /// Charges a write of `len` bytes at the current position and moves it.
    fn charge(&mut self, len: usize) -> StreamResult<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        let len = len as u64;
        let charge = match self.position {
            None => len,
            Some(position) => growth(file_size(&self.file), position, len),
        };
        if let Err(exceeded) = self.meter.charge_bytes(charge) {
            self.closed = true;
            return Err(StreamError::LastOperationFailed(wasmtime::Error::new(
                exceeded,
            )));
        }
        if let Some(position) = &mut self.position {
            *position = position.saturating_add(len);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl OutputStream for MeteredStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.write(bytes)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.charge(bytes.len())?;
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, len: usize) -> StreamResult<()> {
        self.charge(len)?;
        self.inner.write_zeroes(len)
    }

    fn flush(&mut self) -> StreamResult<()> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if self.closed {
            return Err(StreamError::Closed);
        }
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait::async_trait]
impl Pollable for MeteredStream {
    async fn ready(&mut self) {
        if !self.closed {
            self.inner.ready().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_symlink_targets() {
        for bad in [
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a/..",
            "\\x",
            "a\\..\\b",
        ] {
            assert!(escaping_target(bad), "{bad}");
        }
        for ok in ["x", "a/b", "./a", "a/./b", "..a", "a..", "a/...", ""] {
            assert!(!escaping_target(ok), "{ok}");
        }
    }

    #[test]
    fn growth_counts_appends_holes_and_not_overwrites() {
        assert_eq!(growth(0, 0, 10), 10);
        assert_eq!(growth(100, 0, 10), 0);
        assert_eq!(growth(100, 95, 10), 5);
        assert_eq!(growth(0, 1 << 40, 1), (1 << 40) + 1);
        // An empty write far past the end writes no hole.
        assert_eq!(growth(0, 1 << 40, 0), 0);
        assert_eq!(growth(0, u64::MAX, 10), u64::MAX);
    }

    #[test]
    fn meters_refuse_whole_charges_past_the_limit() {
        let grants = Grants {
            dirs: vec![
                crate::sandbox::DirGrant::read_only("/d", "/data"),
                crate::sandbox::DirGrant::writable("/o", "/out")
                    .with_max_bytes(100)
                    .with_max_files(1),
            ],
            ..Grants::default()
        };
        let quota = FsQuota::new(&grants);
        assert_eq!(quota.meters.len(), 1, "only writable grants are metered");
        let meter = &quota.meters[0];
        assert!(meter.charge_bytes(60).is_ok());
        assert!(meter.charge_bytes(41).is_err());
        assert!(meter.charge_bytes(40).is_ok());
        assert!(meter.charge_bytes(1).is_err());
        assert!(meter.charge_bytes(0).is_ok());
        assert!(meter.charge_file().is_ok());
        assert!(meter.charge_file().is_err());
        let usage = &quota.usage()[0];
        assert_eq!((usage.bytes_written, usage.files_created), (100, 1));
        assert!(usage.bytes_limit_hit && usage.files_limit_hit);
        let message = usage.limit_message().unwrap();
        assert!(message.contains("/out") && message.contains("max_bytes = 100"));
    }
}
