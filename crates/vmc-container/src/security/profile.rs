//! Docker's seccomp profile format (the JSON of `docker run --security-opt seccomp=FILE`):
//! parsing with errors that name the field, and the choice of rules for one host and one
//! capability set (`includes`/`excludes` by capability, architecture and kernel version).

use super::capabilities::{self, CapSet};
use serde::Deserialize;
use serde_json::Value;

/// `EPERM`: the errno of `SCMP_ACT_ERRNO` without `errnoRet`, as runc and libseccomp use.
const EPERM: u16 = 1;

/// What the filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `SCMP_ACT_ALLOW`.
    Allow,
    /// `SCMP_ACT_ERRNO`: fail with this errno.
    Errno(u16),
    /// `SCMP_ACT_KILL`, `SCMP_ACT_KILL_THREAD`.
    KillThread,
    /// `SCMP_ACT_KILL_PROCESS`.
    KillProcess,
    /// `SCMP_ACT_TRAP`: SIGSYS.
    Trap,
    /// `SCMP_ACT_TRACE`: notify a ptrace tracer with this value.
    Trace(u16),
    /// `SCMP_ACT_LOG`: allow and log.
    Log,
}

impl Action {
    /// The kernel's precedence of the action (lower wins when two filters disagree), which
    /// also orders vmc's rule groups: the most restrictive first.
    pub fn precedence(self) -> u8 {
        match self {
            Action::KillProcess => 0,
            Action::KillThread => 1,
            Action::Trap => 2,
            Action::Errno(_) => 3,
            Action::Trace(_) => 4,
            Action::Log => 5,
            Action::Allow => 6,
        }
    }
}

/// How an argument is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `SCMP_CMP_NE`.
    Ne,
    /// `SCMP_CMP_LT`.
    Lt,
    /// `SCMP_CMP_LE`.
    Le,
    /// `SCMP_CMP_EQ`.
    Eq,
    /// `SCMP_CMP_GE`.
    Ge,
    /// `SCMP_CMP_GT`.
    Gt,
    /// `SCMP_CMP_MASKED_EQ`: `arg & value == valueTwo`.
    MaskedEq,
}

/// One argument condition of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    /// Which argument (0..=5).
    pub index: u8,
    /// The value compared with (the mask for `MaskedEq`).
    pub value: u64,
    /// The masked value `MaskedEq` compares with.
    pub value_two: u64,
    /// The comparison.
    pub op: CmpOp,
}

/// When a rule applies (`includes`) or does not (`excludes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// Capabilities: all of them (includes), any of them (excludes).
    pub caps: Vec<u32>,
    /// Architectures as Go names them (`amd64`, `arm64`, ...).
    pub arches: Vec<String>,
    /// Kernel version (major, minor) from which on.
    pub min_kernel: Option<(u32, u32)>,
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The system calls it names.
    pub names: Vec<String>,
    /// What happens when one of them matches.
    pub action: Action,
    /// Argument conditions: all must hold (but see [`Rule::condition_sets`]).
    pub args: Vec<ArgCondition>,
    /// The rule applies only when this holds.
    pub includes: Condition,
    /// The rule does not apply when any part of this holds.
    pub excludes: Condition,
}

impl Rule {
    /// The rule's alternatives, each a list of conditions that must all hold. Like runc, a
    /// rule with two conditions on the same argument is taken as one alternative per
    /// condition (libseccomp cannot AND two comparisons of one argument).
    pub fn condition_sets(&self) -> Vec<Vec<ArgCondition>> {
        let repeated = (0..6u8).any(|i| self.args.iter().filter(|a| a.index == i).count() > 1);
        if repeated {
            self.args.iter().map(|a| vec![*a]).collect()
        } else if self.args.is_empty() {
            Vec::new()
        } else {
            vec![self.args.clone()]
        }
    }
}

/// What a profile's rules are chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The workload's capability (bounding) set, as moby compares it.
    pub caps: CapSet,
    /// The host architecture as Go names it.
    pub arch: &'static str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// This host's architecture and kernel, for the capability set `caps`.
    pub fn host(caps: CapSet) -> Target {
        Target {
            caps,
            arch: go_arch(),
            kernel: kernel_version(),
        }
    }
}

/// A parsed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// What happens to system calls no rule matches.
    pub default_action: Action,
    /// The rules, in the profile's order.
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    default_action: String,
    default_errno_ret: Option<u32>,
    architectures: Option<Vec<String>>,
    arch_map: Option<Vec<RawArchMap>>,
    syscalls: Option<Vec<Value>>,
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArchMap {
    architecture: String,
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSyscall {
    name: Option<String>,
    names: Option<Vec<String>>,
    action: String,
    errno_ret: Option<u32>,
    args: Option<Vec<Value>>,
    includes: Option<RawCondition>,
    excludes: Option<RawCondition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCondition {
    caps: Option<Vec<String>>,
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// The architecture names libseccomp knows (`architectures`, `archMap`).
const SCMP_ARCHES: [&str; 17] = [
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
];

/// Newer libseccomp architecture names.
const SCMP_ARCHES_NEWER: [&str; 4] = [
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
];

impl Profile {
    /// Parses a profile; the error is one line naming the field (`syscalls[3].action: ...`).
    pub fn parse(bytes: &[u8]) -> Result<Profile, String> {
        let raw: RawProfile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if raw.listener_path.as_deref().is_some_and(|p| !p.is_empty()) {
            return Err(
                "listenerPath: vmc has no seccomp notification agent; remove the field".into(),
            );
        }
        if raw.flags.as_ref().is_some_and(|f| !f.is_empty()) {
            return Err(
                "flags: vmc installs filters without seccomp flags; remove the field".into(),
            );
        }
        for (i, arch) in raw.architectures.iter().flatten().enumerate() {
            check_arch(arch, &format!("architectures[{i}]"))?;
        }
        for (i, map) in raw.arch_map.iter().flatten().enumerate() {
            check_arch(&map.architecture, &format!("archMap[{i}].architecture"))?;
            for (j, sub) in map.sub_architectures.iter().flatten().enumerate() {
                check_arch(sub, &format!("archMap[{i}].subArchitectures[{j}]"))?;
            }
        }
        let default_errno = errno(raw.default_errno_ret, "defaultErrnoRet")?;
        let default_action = action(&raw.default_action, default_errno, "defaultAction")?;
        let rules = raw
            .syscalls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, value)| rule(value, &format!("syscalls[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Profile {
            default_action,
            rules,
        })
    }

    /// The rules that apply to `target`, as moby chooses them: an `excludes` part that holds
    /// (an architecture listed, any capability listed in the set, the kernel at least
    /// minKernel) drops the rule; so does an `includes` part that does not hold (the
    /// architecture not listed, a listed capability missing, the kernel older).
    pub fn rules_for<'a>(&'a self, target: &'a Target) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |rule| {
            let ex = &rule.excludes;
            let excluded = ex.arches.iter().any(|a| a == target.arch)
                || ex.caps.iter().any(|c| target.caps.contains(*c))
                || ex.min_kernel.is_some_and(|v| target.kernel >= v);
            let inc = &rule.includes;
            let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == target.arch))
                && inc.caps.iter().all(|c| target.caps.contains(*c))
                && inc.min_kernel.is_none_or(|v| target.kernel >= v);
            included && !excluded
        })
    }
}

fn check_arch(name: &str, field: &str) -> Result<(), String> {
    if SCMP_ARCHES.contains(&name) || SCMP_ARCHES_NEWER.contains(&name) {
        Ok(())
    } else {
        Err(format!("{field}: unknown architecture {name:?} (expected SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, ...)"))
    }
}

fn errno(value: Option<u32>, field: &str) -> Result<Option<u16>, String> {
    match value {
        None => Ok(None),
        Some(n) if n <= 4095 => Ok(Some(n as u16)),
        Some(n) => Err(format!("{field}: {n} is not an errno (1..4095)")),
    }
}

fn action(name: &str, errno: Option<u16>, field: &str) -> Result<Action, String> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(EPERM)),
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(format!("{field}: SCMP_ACT_NOTIFY needs a notification agent, which vmc does not have"))
        }
        other => {
            return Err(format!(
                "{field}: unknown action {other:?} (expected SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG)"
            ))
        }
    })
}

fn rule(value: Value, field: &str) -> Result<Rule, String> {
    let raw: RawSyscall = serde_json::from_value(value).map_err(|e| format!("{field}: {e}"))?;
    let names: Vec<String> = raw.names.into_iter().flatten().chain(raw.name).collect();
    if names.is_empty() {
        return Err(format!("{field}.names: no system call named"));
    }
    if let Some(i) = names.iter().position(|n| n.is_empty()) {
        return Err(format!("{field}.names[{i}]: empty name"));
    }
    let action = action(
        &raw.action,
        errno(raw.errno_ret, &format!("{field}.errnoRet"))?,
        &format!("{field}.action"),
    )?;
    let args = raw
        .args
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, value)| arg(value, &format!("{field}.args[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule {
        names,
        action,
        args,
        includes: condition(raw.includes, &format!("{field}.includes"))?,
        excludes: condition(raw.excludes, &format!("{field}.excludes"))?,
    })
}

fn arg(value: Value, field: &str) -> Result<ArgCondition, String> {
    let raw: RawArg = serde_json::from_value(value).map_err(|e| format!("{field}: {e}"))?;
    let index = u8::try_from(raw.index)
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| {
            format!(
                "{field}.index: {} is not an argument number (0..5)",
                raw.index
            )
        })?;
    let op = match raw.op.as_str() {
        "SCMP_CMP_NE" => CmpOp::Ne,
        "SCMP_CMP_LT" => CmpOp::Lt,
        "SCMP_CMP_LE" => CmpOp::Le,
        "SCMP_CMP_EQ" => CmpOp::Eq,
        "SCMP_CMP_GE" => CmpOp::Ge,
        "SCMP_CMP_GT" => CmpOp::Gt,
        "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
        other => {
            return Err(format!(
                "{field}.op: unknown comparison {other:?} (expected SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or SCMP_CMP_MASKED_EQ)"
            ))
        }
    };
    Ok(ArgCondition {
        index,
        value: raw.value,
        value_two: raw.value_two,
        op,
    })
}

fn condition(raw: Option<RawCondition>, field: &str) -> Result<Condition, String> {
    let Some(raw) = raw else {
        return Ok(Condition::default());
    };
    let caps = raw
        .caps
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, name)| {
            capabilities::number_of(&name)
                .ok_or_else(|| format!("{field}.caps[{i}]: unknown capability {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let min_kernel = raw
        .min_kernel
        .map(|v| {
            parse_kernel_version(&v).ok_or_else(|| {
                format!("{field}.minKernel: {v:?} is not a kernel version such as \"4.8\"")
            })
        })
        .transpose()?;
    Ok(Condition {
        caps,
        arches: raw.arches.unwrap_or_default(),
        min_kernel,
    })
}

/// (major, minor) of a version such as `4.8`, `5.10.0` or `6.18.44-fc-v857`.
fn parse_kernel_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The running kernel's (major, minor); (0, 0) if uname's release cannot be read, so that no
/// minKernel rule applies.
pub(crate) fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_kernel_version(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

/// The host architecture as Go (and so Docker's profiles) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: CapSet) -> Target {
        Target {
            caps,
            arch: "amd64",
            kernel: (6, 1),
        }
    }

    fn chosen(profile: &Profile, target: &Target) -> Vec<String> {
        profile
            .rules_for(target)
            .flat_map(|r| r.names.clone())
            .collect()
    }

    #[test]
    fn the_default_profile_parses() {
        let profile = Profile::parse(super::super::DEFAULT_PROFILE).unwrap();
        assert_eq!(profile.default_action, Action::Errno(1));
        let names = chosen(&profile, &target(CapSet::docker_default()));
        for allowed in [
            "read",
            "execve",
            "clone",
            "socket",
            "personality",
            "ptrace",
            "arch_prctl",
        ] {
            assert!(names.iter().any(|n| n == allowed), "{allowed} missing");
        }
        for blocked in super::super::BLOCKED_BY_DEFAULT {
            assert!(!names.iter().any(|n| n == blocked), "{blocked} allowed");
        }
    }

    #[test]
    fn includes_and_excludes_follow_caps_arches_and_kernel() {
        let json = br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["newer"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "7.0"}},
            {"names": ["old_only"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}},
            {"names": ["arm_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
            {"names": ["not_on_amd64"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["both"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["SYS_ADMIN", "cap_net_admin"]}}
        ]}"#;
        let profile = Profile::parse(json).unwrap();
        assert_eq!(profile.default_action, Action::Errno(1));
        assert_eq!(profile.rules[1].action, Action::Errno(38));
        let plain = target(CapSet::docker_default());
        assert_eq!(chosen(&profile, &plain), ["clone3", "ptrace"]);
        let admin = target(CapSet::docker_default().with(capabilities::SYS_ADMIN));
        assert_eq!(chosen(&profile, &admin), ["mount", "ptrace"]);
        let both = target(CapSet::docker_default().with(21).with(12));
        assert_eq!(chosen(&profile, &both), ["mount", "ptrace", "both"]);
        let old = Target {
            kernel: (4, 4),
            ..plain
        };
        assert_eq!(chosen(&profile, &old), ["clone3", "old_only"]);
    }

    #[test]
    fn repeated_argument_indexes_become_alternatives() {
        let json = br#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"name": "personality", "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 15, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]}"#;
        let profile = Profile::parse(json).unwrap();
        assert_eq!(profile.rules[0].names, ["personality"]);
        assert_eq!(profile.rules[0].condition_sets().len(), 2);
        let sets = profile.rules[1].condition_sets();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0][1].op, CmpOp::MaskedEq);
        assert_eq!((sets[0][1].value, sets[0][1].value_two), (15, 3));
    }

    #[test]
    fn bad_profiles_name_the_field() {
        let cases: [(&[u8], &str); 11] = [
            (b"{", "EOF"),
            (br#"{"syscalls": []}"#, "defaultAction"),
            (br#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "defaultAction: unknown action \"SCMP_ACT_NOPE\""),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99999}"#, "defaultErrnoRet"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}"#, "architectures[0]"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}"#, "syscalls[0].names"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "ALLOW"}]}"#, "syscalls[0].action"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#, "syscalls[0].args[0].index"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "EQ"}]}]}"#, "syscalls[0].args[0].op"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_FLY"]}}]}"#, "syscalls[1].includes.caps[0]"),
            (br#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "four"}}]}"#, "syscalls[0].excludes.minKernel"),
        ];
        for (json, needle) in cases {
            let err = Profile::parse(json).unwrap_err();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
            assert!(!err.contains('\n'), "{err:?}");
        }
        let notify = br#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#;
        assert!(Profile::parse(notify).unwrap_err().contains("agent"));
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("6.18.44-fc-v857"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5"), None);
        assert!(kernel_version() >= (3, 0));
    }
}
