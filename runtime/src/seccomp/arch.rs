//! The architectures a profile may name, shared by the filter builder and
//! the ENOSYS stub.

use libseccomp::ScmpArch;
use oci_spec::runtime::Arch;

/// OCI arch names and libseccomp's; the OCI enum's values are libseccomp's tokens.
pub(super) const ARCHES: &[(Arch, ScmpArch)] = &[
    (Arch::ScmpArchNative, ScmpArch::Native),
    (Arch::ScmpArchX86, ScmpArch::X86),
    (Arch::ScmpArchX86_64, ScmpArch::X8664),
    (Arch::ScmpArchX32, ScmpArch::X32),
    (Arch::ScmpArchArm, ScmpArch::Arm),
    (Arch::ScmpArchAarch64, ScmpArch::Aarch64),
    (Arch::ScmpArchMips, ScmpArch::Mips),
    (Arch::ScmpArchMips64, ScmpArch::Mips64),
    (Arch::ScmpArchMips64n32, ScmpArch::Mips64N32),
    (Arch::ScmpArchMipsel, ScmpArch::Mipsel),
    (Arch::ScmpArchMipsel64, ScmpArch::Mipsel64),
    (Arch::ScmpArchMipsel64n32, ScmpArch::Mipsel64N32),
    (Arch::ScmpArchPpc, ScmpArch::Ppc),
    (Arch::ScmpArchPpc64, ScmpArch::Ppc64),
    (Arch::ScmpArchPpc64le, ScmpArch::Ppc64Le),
    (Arch::ScmpArchS390, ScmpArch::S390),
    (Arch::ScmpArchS390x, ScmpArch::S390X),
    (Arch::ScmpArchParisc, ScmpArch::Parisc),
    (Arch::ScmpArchParisc64, ScmpArch::Parisc64),
    (Arch::ScmpArchRiscv64, ScmpArch::Riscv64),
    (Arch::ScmpArchLoongarch64, ScmpArch::Loongarch64),
    (Arch::ScmpArchM68k, ScmpArch::M68k),
    (Arch::ScmpArchSh, ScmpArch::Sh),
    (Arch::ScmpArchSheb, ScmpArch::Sheb),
];

pub(super) fn arch(a: Arch) -> ScmpArch {
    ARCHES
        .iter()
        .find(|(oci, _)| *oci == a)
        .map(|(_, s)| *s)
        .expect("ARCHES lists every OCI arch")
}
