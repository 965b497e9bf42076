//! Drives the `ktstr-vm` binary on real cache folders (no network: every fetch here finds its
//! kernel already cached).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn ktstr_vm(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ktstr-vm"))
        .args(args)
        .env("KTSTR_CACHE_DIR", cache)
        .env("XDG_CACHE_HOME", cache.join("xdg"))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A cache entry as `kernel fetch` leaves it, with a minimal bzImage boot header.
fn cached_entry(cache: &Path, release: &str, sched_ext: bool) {
    let key = format!("linux-binary-unsigned-{release}_1");
    let dir = cache.join(&key);
    fs::create_dir_all(&dir).unwrap();
    let mut image = vec![0u8; 0x600];
    image[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x20e..0x210].copy_from_slice(&0x300u16.to_le_bytes());
    image[0x500..0x500 + release.len()].copy_from_slice(release.as_bytes());
    fs::write(dir.join("vmlinuz"), image).unwrap();
    let config = if sched_ext {
        "CONFIG_SCHED_CLASS_EXT=y\n"
    } else {
        "# CONFIG_SCHED_CLASS_EXT is not set\n"
    };
    fs::write(dir.join("config"), config).unwrap();
    let manifest = serde_json::json!({
        "key": key, "package": format!("linux-binary-unsigned-{release}"), "version": "1",
        "release": release, "image": "vmlinuz", "config": "config", "vmlinux": null, "sched_ext": sched_ext,
    });
    fs::write(dir.join("kernel.json"), manifest.to_string()).unwrap();
}

#[test]
fn list_fetch_and_show_work_on_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let out = ktstr_vm(cache.path(), &["kernel", "list"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("no kernels in"), "{}", text(&out.stdout));

    cached_entry(cache.path(), "7.3.4+deb13-cloud-amd64", true);
    cached_entry(cache.path(), "6.12.1+deb13-cloud-amd64", false);
    let out = ktstr_vm(cache.path(), &["kernel", "list"]);
    let listed = text(&out.stdout);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].contains("7.3.4+deb13-cloud-amd64\tsched_ext=yes\tbzimage"), "{listed}");
    assert!(lines[1].contains("sched_ext=no"), "{listed}");

    let out = ktstr_vm(cache.path(), &["kernel", "fetch"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("release 7.3.4+deb13-cloud-amd64, sched_ext yes"),
        "{}",
        text(&out.stdout)
    );
    assert!(!cache.path().join(".apt").exists(), "a cached series needs no apt");

    let out = ktstr_vm(cache.path(), &["kernel", "show", "6.12"]);
    assert!(out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("sched_ext no: kernel linux-binary-unsigned-6.12.1+deb13-cloud-amd64_1 is built without CONFIG_SCHED_CLASS_EXT=y"), "{shown}");
}

#[test]
fn bad_kernels_and_bad_usage_fail_with_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let not_kernel = cache.path().join("notes.txt");
    fs::write(&not_kernel, "hello").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["kernel", "show", "/nonexistent/bzImage"],
            "kernel path /nonexistent/bzImage does not exist",
        ),
        (&["kernel", "show", not_kernel.to_str().unwrap()], "is not a kernel image"),
        (&["kernel", "show", "9.9"], "no kernel '9.9' in the cache"),
        (&["kernel", "frobnicate"], "usage: ktstr-vm"),
    ];
    for (args, expected) in cases {
        let out = ktstr_vm(cache.path(), args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
