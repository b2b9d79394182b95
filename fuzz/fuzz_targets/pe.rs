#![no_main]
//! PE/COFF headers (st-image's reader, used by `stmgr image inspect` and as the UKI stub
//! reader): parse; on success every section's raw and loaded bytes lie inside the input, and
//! the UKI writer, given the input as its stub, either refuses it or writes a PE that parses
//! back with `.linux` holding the kernel.
use libfuzzer_sys::fuzz_target;
use st_image::pe::PeHeaders;
use st_image::uki::{self, Sbat, UkiInputs};

fuzz_target!(|data: &[u8]| {
    let Ok(h) = PeHeaders::parse(data) else {
        return;
    };
    for s in &h.sections {
        assert_eq!(s.raw(data).len(), s.raw_size as usize);
        assert!(s.loaded(data).len() <= s.virtual_size as usize);
    }
    let _ = st_image::pe::checksum(data, h.checksum_offset());
    for sbat in [Sbat::Keep, Sbat::Append(b"x,1\n")] {
        let inputs = UkiInputs {
            kernel: b"kernel",
            initramfs: b"initrd",
            cmdline: "console=ttyS0",
            os_release: None,
            sbat,
        };
        if let Ok(out) = uki::build(data, &inputs) {
            let back = PeHeaders::parse(&out).expect("the UKI parses");
            let linux = back.section(".linux").expect(".linux");
            assert_eq!(linux.loaded(&out), b"kernel");
        }
    }
});
