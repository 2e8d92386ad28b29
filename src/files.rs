//! Reading and writing whole files with the bounds and modes stboot and stmgr need.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Read a whole file, refusing one larger than `limit` (without reading past it).
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).with_context(|| format!("reading {}", path.display()))?;
    if buf.len() as u64 > limit {
        bail!("{}: larger than the limit of {limit} bytes", path.display());
    }
    Ok(buf)
}

/// Create or replace `path` with `bytes`; a new file gets permission bits `mode`.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))
}

/// Create `path` afresh (replacing any file there), readable and writable by the owner
/// only, open for reading and writing: a staging file.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(path)
}
