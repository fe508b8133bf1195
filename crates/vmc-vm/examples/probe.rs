//! Development tool: runs the KVM capability probe and prints its report (what `vmc doctor`
//! shows), e.g. inside a scripts/kvm-sandbox L1 host.
//!
//! `cargo run -p vmc-vm --example probe`

fn main() {
    let report = vmc_vm::probe::probe();
    println!("access:  {:?}", report.access);
    match &report.verdict {
        Some(verdict) => println!("verdict: {}", verdict.message()),
        None => println!("verdict: none (KVM unavailable)"),
    }
    println!("elapsed: {:?}", report.elapsed);
}
