//! PCR 11 as systemd-stub leaves it for a UKI ([`crate::ospkg::uki`]): for each
//! section it measures, in its order, first the section's name with its NUL
//! (`.linux\0`), then the section's contents, each as an `EV_IPL` event whose data
//! is the name in UTF-16 with its NUL, each extended with the SHA-256 of what was
//! measured. `systemd-measure calculate --phase=` computes the same value from the
//! section files; a PCR policy signed for the UKI (`.pcrsig`) covers it together
//! with the boot phases systemd in the booted OS adds (`enter-initrd`, ...).

use super::{Extend, Measurement, Sha256Digest};

/// systemd's PCR for the UKI's sections (`TPM2_PCR_KERNEL_BOOT`).
pub const PCR: u32 = 11;
/// The TCG event type systemd-stub logs the sections with.
pub const EV_IPL: u32 = 0x0000_000d;

/// The section names as `Measurement::what` takes them.
const WHAT: [(&str, &str, &str); 10] = [
    (".linux", "UKI section name .linux", "UKI section .linux"),
    (".osrel", "UKI section name .osrel", "UKI section .osrel"),
    (".cmdline", "UKI section name .cmdline", "UKI section .cmdline"),
    (".initrd", "UKI section name .initrd", "UKI section .initrd"),
    (".ucode", "UKI section name .ucode", "UKI section .ucode"),
    (".splash", "UKI section name .splash", "UKI section .splash"),
    (".dtb", "UKI section name .dtb", "UKI section .dtb"),
    (".uname", "UKI section name .uname", "UKI section .uname"),
    (".sbat", "UKI section name .sbat", "UKI section .sbat"),
    (".pcrpkey", "UKI section name .pcrpkey", "UKI section .pcrpkey"),
];

/// The event data: the name in UTF-16LE, with its NUL.
fn utf16z(name: &str) -> Vec<u8> {
    name.encode_utf16().chain([0]).flat_map(u16::to_le_bytes).collect()
}

/// The measurements of a UKI's sections into `pcr`: `sections` are the measured
/// sections ([`crate::ospkg::uki::UkiLayout::measured`]) with the SHA-256 of each one's
/// contents, in that order.
pub fn measurements(pcr: u32, sections: &[(&'static str, Sha256Digest)]) -> Vec<Measurement> {
    let mut v = Vec::with_capacity(sections.len() * 2);
    for (name, digest) in sections {
        let (name_what, data_what) = WHAT
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, a, b)| (*a, *b))
            .unwrap_or(("UKI section name", "UKI section"));
        let mut with_nul = name.as_bytes().to_vec();
        with_nul.push(0);
        let ev = |what, digest| Measurement {
            pcr,
            what,
            digest,
            event_type: EV_IPL,
            data: utf16z(name),
            extend: Extend::Digest,
        };
        v.push(ev(name_what, Sha256Digest::of(&with_nul)));
        v.push(ev(data_what, *digest));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_then_contents_extended_as_they_are() {
        let ms = measurements(11, &[(".linux", Sha256Digest::of(b"K")), (".initrd", Sha256Digest::of(b"I"))]);
        assert_eq!(ms.len(), 4);
        assert_eq!(ms[0].digest, Sha256Digest::of(b".linux\0"));
        assert_eq!(ms[0].extend_value(), ms[0].digest);
        assert_eq!(ms[1].digest, Sha256Digest::of(b"K"));
        assert_eq!(ms[2].data, b".\0i\0n\0i\0t\0r\0d\0\0\0");
        assert!(ms.iter().all(|m| m.pcr == 11 && m.event_type == EV_IPL));
        assert_eq!((ms[0].what, ms[3].what), ("UKI section name .linux", "UKI section .initrd"));
    }
}
