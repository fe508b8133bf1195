//! cgroup v2 device control: a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the run's
//! cgroup, the v2 replacement for the v1 devices controller (runc does the same).
//!
//! The kernel runs the program on every open and mknod of a device node by a process of the
//! cgroup, with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`
//! (`access_type` = access << 16 | type) in r1; returning 1 allows, 0 denies (EPERM).
//! The program is a plain allowlist, assembled here: one block per [`DeviceRule`] that
//! returns 1 when the device matches, and a final `return 0`. It is loaded with `bpf(2)` and
//! attached with `BPF_F_ALLOW_MULTI`, so programs of enclosing cgroups (systemd's) still run;
//! the attachment lives as long as the cgroup.

use super::devices::{Access, DeviceKind, DeviceRule};
use crate::error::ContainerError;
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (class | operation | source).
const LDX_MEM_W: u8 = 0x61;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_MOV_K: u8 = 0xb7;
const ALU_AND_K: u8 = 0x54;
const ALU_RSH_K: u8 = 0x74;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Registers: r1 the context (the only one live across blocks), r2-r4 scratch, r0 the verdict.
// Each block loads what it compares afresh: a value a block learnt (r3 == 2 after a fallen-
// through `jne`) would otherwise differ between paths, stop the verifier from pruning
// equivalent states and make loading the program cost ten times more.
const FIELD: u8 = 2;
const SCRATCH: u8 = 3;

/// The allowlist program for `rules` (everything else denied).
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut insns: Vec<Insn> = rules.iter().flat_map(rule_block).collect();
    insns.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    insns.push(insn(JMP_EXIT, 0, 0, 0, 0));
    insns
}

/// The instructions that return 1 when the device matches `rule` and fall through otherwise.
fn rule_block(rule: &DeviceRule) -> Vec<Insn> {
    let kind = match rule.kind {
        DeviceKind::Block => 1, // BPF_DEVCG_DEV_BLOCK
        DeviceKind::Char => 2,  // BPF_DEVCG_DEV_CHAR
    };
    // access_type = access << 16 | type.
    let mut block = vec![
        insn(LDX_MEM_W, FIELD, 1, 0, 0),
        insn(ALU64_MOV_X, SCRATCH, FIELD, 0, 0),
        insn(ALU_AND_K, SCRATCH, 0, 0, 0xffff),
        insn(JMP_JNE_K, SCRATCH, 0, 0, kind),
    ];
    if rule.access != Access::ALL {
        // Any access bit outside the rule's set means no match.
        let outside = i32::from(!rule.access.bits() & Access::ALL.bits());
        block.extend([
            insn(ALU_RSH_K, FIELD, 0, 0, 16),
            insn(ALU_AND_K, FIELD, 0, 0, outside),
            insn(JMP_JNE_K, FIELD, 0, 0, 0),
        ]);
    }
    for (offset, number) in [(4, rule.major), (8, rule.minor)] {
        if let Some(number) = number {
            block.extend([
                insn(LDX_MEM_W, FIELD, 1, offset, 0),
                insn(JMP_JNE_K, FIELD, 0, 0, number as i32),
            ]);
        }
    }
    block.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
    block.push(insn(JMP_EXIT, 0, 0, 0, 0));
    let len = block.len();
    for (at, op) in block.iter_mut().enumerate() {
        if op.code == JMP_JNE_K {
            // Relative to the next instruction: land just after the block.
            op.off = (len - at - 1) as i16;
        }
    }
    block
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> nix::Result<libc::c_long> {
    // SAFETY: attr is a valid, initialised bpf_attr prefix of the size given; the kernel
    // reads it (and for PROG_LOAD writes the log into the buffer it points to).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    Errno::result(rc)
}

/// Loads the program; on a verifier refusal the error carries the verifier's last words.
fn load(insns: &[Insn]) -> Result<OwnedFd, ContainerError> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"vmc_devices");
    let attr = |log: &mut [u8]| ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: u32::from(!log.is_empty()),
        log_size: log.len() as u32,
        log_buf: if log.is_empty() {
            0
        } else {
            log.as_mut_ptr() as u64
        },
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..ProgLoad::default()
    };
    let fd = match bpf(BPF_PROG_LOAD, &mut attr(&mut [])) {
        Ok(fd) => fd,
        Err(Errno::EPERM) => {
            return Err(ContainerError::sys(
                "loading the device-control BPF program (needs CAP_BPF or root; or run with --privileged)",
                Errno::EPERM,
            ))
        }
        Err(first) => {
            let mut log = vec![0u8; 64 * 1024];
            let _ = bpf(BPF_PROG_LOAD, &mut attr(&mut log));
            let text = String::from_utf8_lossy(&log);
            let last = text
                .trim_end_matches('\0')
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("no verifier log")
                .to_string();
            return Err(ContainerError::sys(
                format!("loading the device-control BPF program (verifier: {last})"),
                first,
            ));
        }
    };
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Loads the allowlist program for `rules` and attaches it to the cgroup v2 directory `dir`.
/// Returns the program's length in instructions.
pub fn restrict(dir: &Path, rules: &[DeviceRule]) -> Result<usize, ContainerError> {
    let insns = program(rules);
    let cgroup = std::fs::File::open(dir).map_err(|source| ContainerError::Cgroup {
        action: "cannot open".into(),
        path: dir.to_path_buf(),
        source,
    })?;
    let prog = load(&insns)?;
    let mut attach = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attach).map_err(|e| {
        ContainerError::sys(
            format!(
                "attaching the device-control BPF program to {}",
                dir.display()
            ),
            e,
        )
    })?;
    Ok(insns.len())
}

#[cfg(test)]
mod tests {
    use super::super::devices::DEFAULT_RULES;
    use super::*;

    /// Runs `insns` as the kernel would on a device context (only the opcodes used here).
    fn run(insns: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access << 16 | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = insns[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                ALU64_MOV_X => r[dst] = r[src],
                ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                ALU_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                JMP_JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JMP_EXIT => return r[0],
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    const CHAR: u32 = 2;
    const BLOCK: u32 = 1;
    const MKNOD: u32 = 1;
    const READ: u32 = 2;
    const WRITE: u32 = 4;

    #[test]
    fn program_allows_exactly_the_default_devices() {
        let p = program(&DEFAULT_RULES);
        let allowed = |kind, access, major, minor| run(&p, kind, access, major, minor) == 1;
        for (major, minor) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            assert!(allowed(CHAR, READ | WRITE, major, minor), "{major}:{minor}");
            assert!(allowed(CHAR, MKNOD, major, minor));
        }
        assert!(allowed(CHAR, READ | WRITE, 136, 0));
        assert!(allowed(CHAR, READ, 136, 4095));
        assert!(allowed(CHAR, WRITE, 10, 200));
        // mknod of anything, opening nothing else.
        assert!(allowed(CHAR, MKNOD, 10, 232));
        assert!(allowed(BLOCK, MKNOD, 8, 0));
        assert!(!allowed(CHAR, READ | WRITE, 10, 232), "kvm");
        assert!(!allowed(CHAR, READ, 1, 11), "kmsg");
        assert!(!allowed(CHAR, READ | MKNOD, 1, 11));
        assert!(!allowed(BLOCK, READ, 8, 0), "disk");
        assert!(
            !allowed(BLOCK, READ, 1, 3),
            "null's numbers as a block device"
        );
        assert!(!allowed(CHAR, READ, 10, 229), "fuse");
        assert!(!allowed(CHAR, READ, 137, 0));
    }

    #[test]
    fn empty_rule_list_denies_everything() {
        let p = program(&[]);
        assert_eq!(p.len(), 2);
        assert_eq!(run(&p, CHAR, READ, 1, 3), 0);
    }

    /// The kernel half: on a host with a cgroup2 mount (pure v2, or hybrid at unified/),
    /// a process in a cgroup carrying the program opens /dev/null but not a kmsg node.
    #[test]
    fn kernel_enforces_the_program_in_a_cgroup2_directory() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: attaching BPF device programs needs root");
            return;
        }
        let Some(mount) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|m| m.join("cgroup.procs").exists() && !m.join("tasks").exists())
        else {
            eprintln!("SKIPPED: no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
            return;
        };
        let dir = mount.join(format!("vmc-bpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let nodes = tempfile::tempdir().unwrap();
        let kmsg = nodes.path().join("kmsg");
        let result = restrict(&dir, &DEFAULT_RULES).map(|len| {
            assert_eq!(len, program(&DEFAULT_RULES).len());
            let script = format!(
                "echo 0 > {procs}; exec 3</dev/null && echo null-ok; \
                 mknod {kmsg} c 1 11 && echo mknod-ok; \
                 (exec 4<{kmsg}) || echo kmsg-refused",
                procs = dir.join("cgroup.procs").display(),
                kmsg = kmsg.display(),
            );
            std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .output()
                .unwrap()
        });
        // The shell has exited; its cgroup empties a moment later.
        for _ in 0..100 {
            if std::fs::remove_dir(&dir).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let output = result.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stdout, "null-ok\nmknod-ok\nkmsg-refused\n", "{stderr}");
        assert!(stderr.contains("Operation not permitted"), "{stderr}");
        // Outside the cgroup the node opens (the program, not the node, refused it).
        assert!(std::fs::File::open(&kmsg).is_ok());
    }
}
