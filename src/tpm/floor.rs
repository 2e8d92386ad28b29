//! The TPM floor: the lowest OS package version a machine boots, kept in its TPM
//! where it can only rise. A trust policy asks for it with `ospkg_tpm_floor`; the
//! floor in force is measured (docs/formats.md, "The TPM floor").
//!
//! Two NV indices in the owner hierarchy hold it, defined by `stmgr tpm floor init`:
//!
//! | index | type | what |
//! |---|---|---|
//! | [`COUNTER_NV_INDEX`] | counter, written only through PolicyCommandCode(TPM2_NV_Increment) | rises by one per increment; the TPM never lets it go down |
//! | [`BASE_NV_INDEX`] | 8 bytes, written once and write-locked until deleted | the counter's value when the floor was 0 |
//!
//! The floor is counter − base. A TPM starts a new counter at the highest value any
//! of its counters ever had, so the base is recorded rather than assumed to be 0.
//! Nothing but an increment writes the counter, and the base cannot be written
//! again: lowering the floor takes deleting both indices, which needs the owner
//! hierarchy's authorization. stboot trusts the indices only with exactly these
//! attributes and policy; anything else at those handles is refused, not ignored.
//!
//! The floor rises when the booted OS confirms a good boot (`stmgr tpm floor
//! raise`, which reads the booted version from the boot report), not when stboot
//! boots a higher version: a release that boots but does not work can still be
//! rolled back until someone confirms it. docs/operator-guide.md has the trade-off.

use anyhow::{bail, Context, Result};

use super::nv::{attr, increment_only_policy, NvPublic};
use super::Tpm;

/// The floor counter (next to upstream's UX identity, 0x01420001).
pub const COUNTER_NV_INDEX: u32 = 0x0142_0002;
/// The counter's value at floor 0.
pub const BASE_NV_INDEX: u32 = 0x0142_0003;
/// The most increments one raise makes: versions are release numbers (1, 2, 3),
/// and each increment is an NV write the TPM's wear budget pays for.
pub const MAX_RAISE: u64 = 256;

const COUNTER_ATTRIBUTES: u32 = attr::COUNTER | attr::POLICYWRITE | attr::AUTHREAD | attr::NO_DA;
const BASE_ATTRIBUTES: u32 = attr::AUTHWRITE | attr::WRITEDEFINE | attr::AUTHREAD | attr::NO_DA;

/// What to do when the indices are wrong or must be made again.
pub const RESET_REMEDY: &str = "the TPM owner deletes both indices (tpm2_nvundefine 0x01420002 -C o; \
     tpm2_nvundefine 0x01420003 -C o) and defines them again with stmgr tpm floor init -floor N";

/// The TPM floor stboot found for one boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TpmFloor {
    /// The trust policy does not ask for one: nothing is read or measured.
    Off,
    /// Asked for, but there is no TPM (or a dry run): no floor, nothing measured.
    NoTpm,
    /// Asked for, and the indices are not defined: no floor, measured as "none".
    Undefined,
    /// The floor in force.
    At(u64),
}

impl TpmFloor {
    /// The lowest version it lets boot, when there is a floor.
    pub fn value(self) -> Option<u64> {
        match self {
            TpmFloor::At(n) => Some(n),
            _ => None,
        }
    }

    /// The data of its measurement (the "TPM floor" event): the floor in decimal,
    /// "none" when the indices are not defined; nothing when it is off or there is
    /// no TPM to measure into.
    pub fn event_text(self) -> Option<String> {
        match self {
            TpmFloor::Off | TpmFloor::NoTpm => None,
            TpmFloor::Undefined => Some("none".into()),
            TpmFloor::At(n) => Some(n.to_string()),
        }
    }
}

/// The floor in `tpm`; `None` when neither index is defined.
pub fn read(tpm: &mut Tpm) -> Result<Option<u64>> {
    let counter = tpm.nv_public(COUNTER_NV_INDEX)?;
    let base = tpm.nv_public(BASE_NV_INDEX)?;
    let (counter, base) = match (counter, base) {
        (None, None) => return Ok(None),
        (Some(c), Some(b)) => (c, b),
        (c, _) => bail!(
            "TPM floor: NV index 0x{:08x} is defined but 0x{:08x} is not (an interrupted stmgr tpm floor init?); {}",
            if c.is_some() { COUNTER_NV_INDEX } else { BASE_NV_INDEX },
            if c.is_some() { BASE_NV_INDEX } else { COUNTER_NV_INDEX },
            RESET_REMEDY
        ),
    };
    check(
        &counter,
        COUNTER_ATTRIBUTES | attr::WRITTEN,
        &increment_only_policy(),
        "a counter only TPM2_NV_Increment writes",
    )?;
    check(&base, BASE_ATTRIBUTES | attr::WRITTEN | attr::WRITELOCKED, &[], "8 bytes written once and write-locked")?;
    let c = read_u64(tpm, COUNTER_NV_INDEX)?;
    let b = read_u64(tpm, BASE_NV_INDEX)?;
    c.checked_sub(b).map(Some).with_context(|| {
        format!("TPM floor: the counter (0x{COUNTER_NV_INDEX:08x}) is {c}, below its base {b} (0x{BASE_NV_INDEX:08x}); {RESET_REMEDY}")
    })
}

/// An index is trusted only as `stmgr tpm floor init` defines it: anything else at
/// that handle could have been written by anyone.
fn check(p: &NvPublic, attributes: u32, policy: &[u8], what: &str) -> Result<()> {
    let mut wrong = Vec::new();
    if p.attributes != attributes {
        wrong.push(format!("attributes 0x{:08x}, expected 0x{attributes:08x}", p.attributes));
    }
    if p.auth_policy != policy {
        wrong.push(format!(
            "write policy {}, expected {}",
            if p.auth_policy.is_empty() { "none".into() } else { crate::digest::hex(&p.auth_policy) },
            if policy.is_empty() {
                "none".into()
            } else {
                format!("{} (PolicyCommandCode(NV_Increment))", crate::digest::hex(policy))
            }
        ));
    }
    if p.size != 8 || p.name_alg != super::TPM_ALG_SHA256 {
        wrong.push(format!("size {} and name algorithm 0x{:04x}, expected 8 and SHA-256", p.size, p.name_alg));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    bail!(
        "TPM floor: NV index 0x{:08x} is not {what} as stmgr tpm floor init defines it ({}): a floor that could be \
         lowered is not trusted; {RESET_REMEDY}",
        p.index,
        wrong.join("; ")
    )
}

fn read_u64(tpm: &mut Tpm, index: u32) -> Result<u64> {
    let b = tpm.nv_read(index, 8)?;
    Ok(u64::from_be_bytes(b.as_slice().try_into().context("an 8-byte NV index read as another size")?))
}

/// Define the indices with the floor at `floor`; refused when either exists.
pub fn init(tpm: &mut Tpm, floor: u64) -> Result<u64> {
    if floor > MAX_RAISE {
        bail!("-floor {floor}: at most {MAX_RAISE} (each step is one counter increment; versions are release numbers)");
    }
    for index in [COUNTER_NV_INDEX, BASE_NV_INDEX] {
        if tpm.nv_public(index)?.is_some() {
            let now = match read(tpm) {
                Ok(Some(f)) => format!("the floor is {f}"),
                Ok(None) => "no floor".into(),
                Err(e) => format!("{e:#}"),
            };
            bail!("NV index 0x{index:08x} is already defined ({now}): a floor is only raised (stmgr tpm floor raise); to start again, {RESET_REMEDY}");
        }
    }
    tpm.nv_define(&NvPublic::new(COUNTER_NV_INDEX, COUNTER_ATTRIBUTES, &increment_only_policy(), 8))?;
    // a counter can be read only once it was incremented: that value is the base
    tpm.nv_increment_by_policy(COUNTER_NV_INDEX)?;
    let base = read_u64(tpm, COUNTER_NV_INDEX)?;
    tpm.nv_define(&NvPublic::new(BASE_NV_INDEX, BASE_ATTRIBUTES, &[], 8))?;
    tpm.nv_write(BASE_NV_INDEX, &base.to_be_bytes())?;
    tpm.nv_write_lock(BASE_NV_INDEX)?;
    for _ in 0..floor {
        tpm.nv_increment_by_policy(COUNTER_NV_INDEX)?;
    }
    read(tpm)?.context("TPM floor: the indices just defined are gone")
}

/// The floor before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    pub from: u64,
    pub to: u64,
}

/// Raise the floor to `version`; a floor at or above it is left as it is.
pub fn raise(tpm: &mut Tpm, version: u64) -> Result<Raised> {
    let from = read(tpm)?.with_context(|| {
        format!("TPM floor: NV index 0x{COUNTER_NV_INDEX:08x} is not defined (define it once: stmgr tpm floor init)")
    })?;
    if version <= from {
        return Ok(Raised { from, to: from });
    }
    let steps = version - from;
    if steps > MAX_RAISE {
        bail!(
            "raising the TPM floor from {from} to {version} takes {steps} counter increments, more than {MAX_RAISE} \
             at once: versions are release numbers (stmgr ospkg create -version N), not dates; raise in steps if meant"
        );
    }
    for _ in 0..steps {
        tpm.nv_increment_by_policy(COUNTER_NV_INDEX)?;
    }
    let to = read(tpm)?.context("TPM floor: the indices are gone")?;
    Ok(Raised { from, to })
}

/// The floor stboot enforces for one boot under a trust policy that does
/// (`wanted`) or does not ask for one, said on the console. A TPM that has the
/// indices but cannot be read, or whose indices are not as defined, fails the
/// boot: the owner asked for a floor, and a package below it must not slip through.
pub fn for_boot(wanted: bool, dry_run: bool) -> Result<TpmFloor> {
    use tracing::{info, warn};
    if !wanted {
        return Ok(TpmFloor::Off);
    }
    if dry_run {
        info!("dry run: the TPM floor (ospkg_tpm_floor) is not read");
        return Ok(TpmFloor::NoTpm);
    }
    let Some(mut tpm) = Tpm::open()? else {
        warn!("trust_policy.json asks for a TPM floor (ospkg_tpm_floor) but there is no TPM: no TPM floor");
        return Ok(TpmFloor::NoTpm);
    };
    match read(&mut tpm)? {
        Some(n) => {
            info!("TPM floor {n} (NV index 0x{COUNTER_NV_INDEX:08x})");
            Ok(TpmFloor::At(n))
        }
        None => {
            warn!(
                "trust_policy.json asks for a TPM floor but NV index 0x{COUNTER_NV_INDEX:08x} is not defined: no TPM \
                 floor, measured as \"none\" (define it once: stmgr tpm floor init)"
            );
            Ok(TpmFloor::Undefined)
        }
    }
}
