//! `ktstr-vm`: manage the kernel cache the VM backend boots from.
//!
//! ```text
//! ktstr-vm kernel fetch [--series 7.3] [--flavour cloud|generic] [--refresh]
//! ktstr-vm kernel list
//! ktstr-vm kernel show <KERNEL>      (a build tree, an image path, a cache key or version)
//! ```

use ktstr_vm::cache_dirs::vmlinux_cache_dir;
use ktstr_vm::kernel::cache::KernelCache;
use ktstr_vm::kernel::fetch::{FetchRequest, Flavour, fetch};
use ktstr_vm::kernel::{KernelSpec, resolve};
use std::process::ExitCode;

const USAGE: &str = "usage: ktstr-vm kernel fetch [--series 7.3] [--flavour cloud|generic] [--suite trixie-backports] [--refresh] | kernel list | kernel show <KERNEL>";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["kernel", "fetch", rest @ ..] => fetch_kernel(rest),
        ["kernel", "list"] => {
            list();
            Ok(())
        }
        ["kernel", "show", spec] => show(spec),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ktstr-vm: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fetch_kernel(args: &[&str]) -> Result<(), String> {
    let mut request = FetchRequest::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--refresh" => request.refresh = true,
            "--series" => {
                request.series = args.next().ok_or("--series needs a value, e.g. 7.3")?.to_string()
            }
            "--suite" => {
                request.suite = args.next().ok_or("--suite needs a value, e.g. trixie")?.to_string()
            }
            "--flavour" => {
                request.flavour = match args.next().copied() {
                    Some("cloud") => Flavour::Cloud,
                    Some("generic") => Flavour::Generic,
                    _ => return Err("--flavour is cloud or generic".into()),
                }
            }
            other => return Err(format!("unknown option '{other}'; {USAGE}")),
        }
    }
    let cache = KernelCache::default_location();
    let entry = fetch(&cache, &request).map_err(|e| e.to_string())?;
    let m = &entry.manifest;
    println!(
        "{} (release {}, sched_ext {}) in {}",
        m.key,
        m.release,
        yes_no(m.sched_ext),
        entry.dir.display()
    );
    Ok(())
}

fn list() {
    let cache = KernelCache::default_location();
    let entries = cache.list();
    if entries.is_empty() {
        println!("no kernels in {}; run `ktstr-vm kernel fetch`", cache.dir().display());
    }
    for entry in entries {
        let m = &entry.manifest;
        let pvh = if m.vmlinux.is_some() { "pvh" } else { "bzimage" };
        println!("{}\t{}\tsched_ext={}\t{pvh}", m.key, m.release, yes_no(m.sched_ext));
    }
}

fn show(spec: &str) -> Result<(), String> {
    let kernel =
        resolve(&KernelSpec::parse(spec), &KernelCache::default_location(), &vmlinux_cache_dir())
            .map_err(|e| e.to_string())?;
    println!("kernel   {}", kernel.label());
    println!("release  {}", kernel.release);
    println!("image    {}", kernel.image.display());
    println!("boots    {}", kernel.boot_image().display());
    match kernel.require_sched_ext() {
        Ok(()) => println!("sched_ext yes"),
        Err(e) => println!("sched_ext no: {e}"),
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
