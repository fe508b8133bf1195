//! Compiles a Docker profile's rules for one host into one BPF program.
//!
//! seccompiler (rust-vmm) turns each rule's argument conditions into BPF and gives the
//! actions' return values. vmc lays the program out itself, because seccompiler's filters
//! test the system call number against each listed call in turn and take one match action
//! only: Docker's profile makes 1.5k such instructions, and installing that costs the child
//! about 3 ms (the kernel translates and JITs every instruction and emulates the filter for
//! each call number to build its allow cache). Instead, like libseccomp's binary-tree
//! optimisation, the call numbers are split into runs with the same outcome, found by a
//! binary search of `>=` comparisons; a run ends in its return, or jumps to the argument
//! checks of its one call. A call listed under several actions gets the most restrictive
//! (the kernel's precedence: KILL, TRAP, ERRNO, TRACE, LOG, ALLOW).

use super::profile::{Action, ArgCondition, CmpOp, Profile, Target};
use super::syscalls;
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompRule,
};
use std::collections::BTreeMap;

/// The kernel's limit on a filter's length (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;
/// Classic BPF opcodes: load a word of `seccomp_data`, return, jump, jump if `>=`, if `==`.
const LD_W_ABS: u16 = 0x20;
const RET_K: u16 = 0x06;
const JA: u16 = 0x05;
const JGE_K: u16 = 0x35;
const JEQ_K: u16 = 0x15;
/// Offsets of `nr` and `arch` in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

/// `AUDIT_ARCH_X86_64` (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE), the only ABI the
/// filter lets through: calls of other ABIs (32-bit x86 binaries) kill the process, as
/// seccompiler's filters do; Docker would allow them.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_003e);
#[cfg(not(target_arch = "x86_64"))]
const AUDIT_ARCH: Option<u32> = None;

/// What one call number leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// A return, whatever the arguments.
    Return(u32),
    /// Argument checks: this index in the chains.
    Chain(usize),
}

/// Compiles `profile` for `target` on this architecture. Names this architecture does not
/// have are skipped, as libseccomp does.
pub fn compile(profile: &Profile, target: &Target) -> Result<BpfProgram, String> {
    let audit_arch = AUDIT_ARCH.ok_or_else(|| {
        format!(
            "vmc cannot build seccomp filters for {}: use --security-opt seccomp=unconfined",
            std::env::consts::ARCH
        )
    })?;
    let default = u32::from(seccomp_action(profile.default_action));
    // Per call number, in the profile's order: (action, alternatives; empty = always).
    let mut calls: BTreeMap<u32, Vec<(Action, Vec<SeccompRule>)>> = BTreeMap::new();
    for rule in profile.rules_for(target) {
        let alternatives = rule
            .condition_sets()
            .iter()
            .map(|set| seccomp_rule(set))
            .collect::<Result<Vec<_>, _>>()?;
        for number in rule.names.iter().filter_map(|n| syscalls::number(n)) {
            calls
                .entry(number as u32)
                .or_default()
                .push((rule.action, alternatives.clone()));
        }
    }
    let mut chains: Vec<BpfProgram> = Vec::new();
    let mut outcomes: BTreeMap<u32, Outcome> = BTreeMap::new();
    for (number, mut entries) in calls {
        entries.sort_by_key(|(action, _)| action.precedence());
        let outcome = match entries.first() {
            Some((action, always)) if always.is_empty() => {
                Outcome::Return(u32::from(seccomp_action(*action)))
            }
            _ => {
                chains.push(chain(entries, default));
                Outcome::Chain(chains.len() - 1)
            }
        };
        outcomes.insert(number, outcome);
    }
    let runs = runs(&outcomes, default);
    let mut program = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JEQ_K, audit_arch, 1, 0),
        stmt(RET_K, u32::from(SeccompAction::KillProcess)),
        stmt(LD_W_ABS, DATA_NR),
    ];
    // Jumps to chains are placed now and pointed at their chain once the tree is laid out.
    let mut chain_jumps: Vec<(usize, usize)> = Vec::new();
    tree(&runs, &mut program, &mut chain_jumps);
    let mut chain_starts = Vec::with_capacity(chains.len());
    for chain in chains {
        chain_starts.push(program.len());
        program.extend(chain);
    }
    for (at, chain) in chain_jumps {
        program[at].k = (chain_starts[chain] - at - 1) as u32;
    }
    if program.len() > MAX_INSTRUCTIONS {
        return Err(format!(
            "the filter has {} BPF instructions, more than the kernel's {MAX_INSTRUCTIONS}",
            program.len()
        ));
    }
    Ok(program)
}

/// The argument checks of one call: each entry's alternatives, most restrictive action
/// first, each followed by its return (seccompiler's rule code jumps past that return when
/// a condition fails); then the default.
fn chain(entries: Vec<(Action, Vec<SeccompRule>)>, default: u32) -> BpfProgram {
    let mut program = BpfProgram::new();
    for (action, alternatives) in entries {
        let ret = stmt(RET_K, u32::from(seccomp_action(action)));
        if alternatives.is_empty() {
            // Unconditional: later entries are unreachable.
            program.push(ret);
            break;
        }
        for rule in alternatives {
            program.extend(BpfProgram::from(rule));
            program.push(ret.clone());
        }
    }
    program.push(stmt(RET_K, default));
    // Each rule's second instruction is seccompiler's way out of a call's rules, used only
    // when a call number does not match (never here). It points two past the rule's
    // return, which for the last rule lies past the chain: the kernel refuses jumps out of
    // the program, so the chain ends with one more (unreachable) return.
    program.push(stmt(RET_K, default));
    program
}

/// Splits the number line into runs `(first number, outcome)` covering 0..=u32::MAX, merging
/// neighbours that return the same.
fn runs(outcomes: &BTreeMap<u32, Outcome>, default: u32) -> Vec<(u32, Outcome)> {
    let mut runs: Vec<(u32, Outcome)> = vec![(0, Outcome::Return(default))];
    let mut push = |start: u32, outcome: Outcome| {
        let last = runs.last_mut().expect("runs start with one");
        if last.1 == outcome && matches!(outcome, Outcome::Return(_)) {
            return;
        }
        if last.0 == start {
            *last = (start, outcome);
        } else {
            runs.push((start, outcome));
        }
    };
    for (&number, outcome) in outcomes {
        push(number, outcome.clone());
        if let Some(next) = number.checked_add(1) {
            if !outcomes.contains_key(&next) {
                push(next, Outcome::Return(default));
            }
        }
    }
    // Merging may have left equal neighbours after a replaced first run.
    runs.dedup_by(|b, a| a.1 == b.1 && matches!(a.1, Outcome::Return(_)));
    runs
}

/// Emits a binary search over `runs` (sorted by first number, the first starting where the
/// enclosing range starts): the loaded call number ends at its run's return or chain jump.
fn tree(runs: &[(u32, Outcome)], program: &mut BpfProgram, chain_jumps: &mut Vec<(usize, usize)>) {
    if let [(_, outcome)] = runs {
        match outcome {
            Outcome::Return(k) => program.push(stmt(RET_K, *k)),
            Outcome::Chain(chain) => {
                chain_jumps.push((program.len(), *chain));
                program.push(stmt(JA, 0));
            }
        }
        return;
    }
    let mid = runs.len() / 2;
    let (left, right) = runs.split_at(mid);
    let pivot = right[0].0;
    let node = program.len();
    program.push(jump(JGE_K, pivot, 0, 0));
    let mut left_code = BpfProgram::new();
    tree(left, &mut left_code, &mut Vec::new());
    if left_code.len() <= usize::from(u8::MAX) {
        // `nr >= pivot` skips the left subtree.
        program[node].jt = left_code.len() as u8;
    } else {
        // Too far for a conditional jump: `>=` falls through to a long jump.
        program[node].jf = 1;
        program.push(stmt(JA, 0));
    }
    let long_jump = (program[node].jf == 1).then(|| program.len() - 1);
    tree(left, program, chain_jumps);
    if let Some(at) = long_jump {
        program[at].k = (program.len() - at - 1) as u32;
    }
    tree(right, program, chain_jumps);
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn seccomp_action(action: Action) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(errno) => SeccompAction::Errno(errno.into()),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Trace(value) => SeccompAction::Trace(value.into()),
        Action::Log => SeccompAction::Log,
    }
}

/// All conditions of one alternative, compared on the full 64 bits as libseccomp does.
fn seccomp_rule(conditions: &[ArgCondition]) -> Result<SeccompRule, String> {
    let conditions = conditions
        .iter()
        .map(|c| {
            let (op, value) = match c.op {
                CmpOp::Ne => (SeccompCmpOp::Ne, c.value),
                CmpOp::Lt => (SeccompCmpOp::Lt, c.value),
                CmpOp::Le => (SeccompCmpOp::Le, c.value),
                CmpOp::Eq => (SeccompCmpOp::Eq, c.value),
                CmpOp::Ge => (SeccompCmpOp::Ge, c.value),
                CmpOp::Gt => (SeccompCmpOp::Gt, c.value),
                CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(c.value), c.value_two),
            };
            SeccompCondition::new(c.index, SeccompCmpArgLen::Qword, op, value)
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    SeccompRule::new(conditions).map_err(|e| e.to_string())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::security::capabilities::CapSet;
    use crate::security::profile::Rule;

    /// Runs a classic BPF seccomp program over one `seccomp_data` (enough of the
    /// instruction set for what seccompiler emits).
    fn run(program: &[sock_filter], nr: i64, args: [u64; 6]) -> u32 {
        assert_valid(program);
        let mut data = Vec::new();
        data.extend_from_slice(&(nr as u32).to_ne_bytes());
        data.extend_from_slice(&0xc000_003eu32.to_ne_bytes()); // AUDIT_ARCH_X86_64
        data.extend_from_slice(&0u64.to_ne_bytes());
        for arg in args {
            data.extend_from_slice(&arg.to_ne_bytes());
        }
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let ins = &program[pc];
            pc += 1;
            match ins.code {
                0x20 => {
                    let at = ins.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                }
                0x54 => acc &= ins.k,
                0x05 => pc += ins.k as usize,
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let hit = match ins.code {
                        0x15 => acc == ins.k,
                        0x25 => acc > ins.k,
                        0x35 => acc >= ins.k,
                        _ => acc & ins.k != 0,
                    };
                    pc += if hit { ins.jt } else { ins.jf } as usize;
                }
                0x06 => return ins.k,
                other => panic!("instruction {other:#x} not modelled"),
            }
        }
    }

    /// The kernel's structural checks (bpf_check_classic): every jump lands inside the
    /// program, which ends with a return.
    fn assert_valid(program: &[sock_filter]) {
        let len = program.len();
        assert!(len > 0 && len <= MAX_INSTRUCTIONS);
        assert_eq!(program[len - 1].code, RET_K, "does not end with a return");
        for (pc, ins) in program.iter().enumerate() {
            let targets: Vec<usize> = match ins.code {
                JA => vec![pc + 1 + ins.k as usize],
                0x15 | 0x25 | 0x35 | 0x45 => {
                    vec![pc + 1 + ins.jt as usize, pc + 1 + ins.jf as usize]
                }
                _ => Vec::new(),
            };
            assert!(
                targets.iter().all(|t| *t < len),
                "jump out of the program at {pc}"
            );
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = 0x0005_0001;
    const ENOSYS: u32 = 0x0005_0026;

    fn default_program(caps: CapSet) -> BpfProgram {
        let profile = Profile::parse(crate::security::DEFAULT_PROFILE).unwrap();
        compile(
            &profile,
            &Target {
                caps,
                arch: "amd64",
                kernel: (6, 1),
            },
        )
        .unwrap()
    }

    #[test]
    fn the_default_profile_allows_blocks_and_checks_arguments() {
        let p = default_program(CapSet::docker_default());
        // A binary search, not a list: a few hundred instructions.
        assert!(p.len() < 400, "{}", p.len());
        let nr = |name| syscalls::number(name).unwrap();
        for name in [
            "read",
            "write",
            "execve",
            "exit_group",
            "capset",
            "prctl",
            "setresuid",
        ] {
            assert_eq!(run(&p, nr(name), [0; 6]), ALLOW, "{name}");
        }
        for name in super::super::BLOCKED_BY_DEFAULT {
            assert_eq!(run(&p, nr(name), [0; 6]), EPERM, "{name}");
        }
        // clone: allowed without namespace flags only; clone3: ENOSYS.
        assert_eq!(
            run(&p, nr("clone"), [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
            ALLOW
        );
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        assert_eq!(run(&p, nr("clone"), [newns, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(&p, nr("clone3"), [0; 6]), ENOSYS);
        // personality: listed values only; socket: anything but AF_VSOCK.
        assert_eq!(
            run(&p, nr("personality"), [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(&p, nr("personality"), [0x0040_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            run(&p, nr("socket"), [libc::AF_INET as u64, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            run(&p, nr("socket"), [libc::AF_VSOCK as u64, 0, 0, 0, 0, 0]),
            EPERM
        );
        // Unknown numbers and x32 calls get the default.
        assert_eq!(run(&p, 4000, [0; 6]), EPERM);
        assert_eq!(run(&p, 0x4000_0000, [0; 6]), EPERM);
    }

    /// What the profile says for one call, read directly (no BPF): the most restrictive
    /// of the rules naming it whose conditions hold, else the default.
    fn reference(profile: &Profile, rules: &[&Rule], args: [u64; 6]) -> u32 {
        let holds = |c: &ArgCondition| {
            let a = args[c.index as usize];
            match c.op {
                CmpOp::Ne => a != c.value,
                CmpOp::Lt => a < c.value,
                CmpOp::Le => a <= c.value,
                CmpOp::Eq => a == c.value,
                CmpOp::Ge => a >= c.value,
                CmpOp::Gt => a > c.value,
                CmpOp::MaskedEq => a & c.value == c.value_two,
            }
        };
        let mut matching: Vec<Action> = rules
            .iter()
            .filter(|r| {
                let sets = r.condition_sets();
                sets.is_empty() || sets.iter().any(|set| set.iter().all(holds))
            })
            .map(|r| r.action)
            .collect();
        matching.sort_by_key(|a| a.precedence());
        u32::from(seccomp_action(
            *matching.first().unwrap_or(&profile.default_action),
        ))
    }

    #[test]
    fn every_call_number_gets_what_the_profile_says() {
        let profile = Profile::parse(crate::security::DEFAULT_PROFILE).unwrap();
        let argument_sets = [
            [0; 6],
            [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0],
            [(libc::CLONE_NEWUSER | libc::SIGCHLD) as u64, 0, 0, 0, 0, 0],
            [0xffff_ffff, 0, 0, 0, 0, 0],
            [8, 0, 0, 0, 0, 0],
            [0x1_0000_0000, 0, 0, 0, 0, 0],
        ];
        for caps in [CapSet::docker_default(), CapSet::all_up_to(40), CapSet(0)] {
            let target = Target {
                caps,
                arch: "amd64",
                kernel: (6, 1),
            };
            let p = compile(&profile, &target).unwrap();
            let mut by_number: BTreeMap<i64, Vec<&Rule>> = BTreeMap::new();
            for rule in profile.rules_for(&target) {
                for nr in rule.names.iter().filter_map(|n| syscalls::number(n)) {
                    by_number.entry(nr).or_default().push(rule);
                }
            }
            for nr in (0..600).chain([0x4000_0000, 0x4000_0001, 0xffff_ffff]) {
                let rules = by_number.get(&nr).map_or(&[][..], Vec::as_slice);
                for args in argument_sets {
                    assert_eq!(
                        run(&p, nr, args),
                        reference(&profile, rules, args),
                        "nr {nr} args {args:?} caps {caps:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn cap_sys_admin_opens_the_gated_calls() {
        let p = default_program(CapSet::docker_default().with(21));
        let nr = |name| syscalls::number(name).unwrap();
        for name in ["mount", "umount2", "unshare", "setns", "clone3"] {
            assert_eq!(run(&p, nr(name), [0; 6]), ALLOW, "{name}");
        }
        let newns = (libc::CLONE_NEWNS | libc::SIGCHLD) as u64;
        assert_eq!(run(&p, nr("clone"), [newns, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, nr("keyctl"), [0; 6]), EPERM);
    }

    #[test]
    fn the_more_restrictive_action_wins_and_unknown_names_are_skipped() {
        let json = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid", "no_such_call", "chown32"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}
        ]}"#;
        let profile = Profile::parse(json).unwrap();
        let target = Target {
            caps: CapSet(0),
            arch: "amd64",
            kernel: (6, 1),
        };
        let p = compile(&profile, &target).unwrap();
        assert_eq!(run(&p, libc::SYS_getpid, [0; 6]), 0x0005_000d);
        assert_eq!(run(&p, libc::SYS_kill, [1, 9, 0, 0, 0, 0]), 0x8000_0000);
        assert_eq!(run(&p, libc::SYS_kill, [1, 15, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, libc::SYS_read, [0; 6]), ALLOW);
        // A profile whose rules all fall away is the default action after the arch check.
        let empty = Profile::parse(br#"{"defaultAction": "SCMP_ACT_ERRNO"}"#).unwrap();
        let p = compile(&empty, &target).unwrap();
        assert_eq!(run(&p, libc::SYS_read, [0; 6]), EPERM);
    }

    /// Runs `call` in a forked child under no_new_privs and `program`; returns its wait status.
    fn in_filtered_child(program: &[sock_filter], call: fn() -> i32) -> i32 {
        // SAFETY: the child only makes raw system calls (prctl, seccomp, `call`) and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let installed = crate::security::apply::set_no_new_privs()
                .and_then(|()| crate::security::apply::install_filter(program));
            // SAFETY: _exit ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(if installed.is_ok() { call() } else { 99 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child, writing its status into `status`.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[test]
    fn x32_and_i386_calls_are_refused_by_the_installed_default_profile() {
        let profile = Profile::parse(crate::security::DEFAULT_PROFILE).unwrap();
        let p = compile(&profile, &Target::host(CapSet::docker_default())).unwrap();
        // getpid, allowed under its x86_64 number, through the x32 ABI (bit 30 set): EPERM.
        let x32_getpid = || {
            // SAFETY: getpid takes no arguments; the filter decides before the kernel looks
            // the number up.
            let rc = unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) };
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if rc == -1 {
                errno
            } else {
                0
            }
        };
        let status = in_filtered_child(&p, x32_getpid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == libc::EPERM,
            "x32 getpid: status {status:#x}"
        );
        // getpid through the i386 ABI (int 0x80, number 20): the arch check kills the process.
        let i386_getpid = || {
            let ret: i64;
            // SAFETY: int 0x80 with eax = 20 is the i386 getpid: no arguments, no memory
            // touched; the registers the 32-bit entry may change are declared clobbered.
            unsafe {
                std::arch::asm!("int 0x80", inlateout("rax") 20i64 => ret,
                    out("r8") _, out("r9") _, out("r10") _, out("r11") _);
            }
            i32::from(ret > 0)
        };
        let status = in_filtered_child(&p, i386_getpid);
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "i386 getpid: status {status:#x}"
        );
    }
}
