//! Output paths (issue 14): a bad `--out` is refused before any work, and an
//! interrupted or failed `convert` / `vectors` / `export-hw` leaves nothing
//! behind: no hidden temporary file or `.partial-PID` folder, no empty target.

use std::path::Path;
use std::process::{Command, Stdio};

mod common;

use common::{exe, tmp};
use std::time::{Duration, Instant};

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_directory_or_file_in_the_wrong_place_is_refused_before_any_work() {
    let dir = tmp("refuse");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(dir.join("file"), b"x").unwrap();
    std::fs::create_dir(dir.join("full")).unwrap();
    std::fs::write(dir.join("full/keep"), b"x").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["convert".into(), "--out".into(), sub.display().to_string()],
            "is a directory; give a file name",
        ),
        (
            vec![
                "convert".into(),
                "--out".into(),
                format!("{}/new/", dir.display()),
            ],
            "is a directory; give a file name",
        ),
        (
            vec![
                "vectors".into(),
                "--out".into(),
                dir.join("file").display().to_string(),
            ],
            "is a file, not a directory",
        ),
        (
            vec![
                "export-hw".into(),
                "--out".into(),
                dir.join("full").display().to_string(),
            ],
            "is not empty",
        ),
    ];
    for (args, want) in cases {
        let t0 = Instant::now();
        // the built-in full model would take a minute to build: a refusal
        // before any work returns at once
        let out = exe()
            .args(&args)
            .args(["--builtin", "full"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{args:?} did work first"
        );
    }
    assert_eq!(entries(&dir), ["file", "full", "sub"]);
    assert!(entries(&sub).is_empty());
    assert_eq!(entries(&dir.join("full")), ["keep"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGINT while `vectors` writes its suite: exit status 130, and the output
/// folder's parent holds exactly what it held before.
#[cfg(unix)]
#[test]
fn sigint_during_vectors_leaves_nothing() {
    let dir = tmp("sigint");
    let out = dir.join("suite");
    let mut interrupted = 0;
    for attempt in 0..5 {
        let mut child = exe()
            .args(["vectors", "-t", "1", "--out"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let partial = dir.join(format!(".suite.partial-{}", child.id()));
        let t0 = Instant::now();
        // wait until the suite is being written, then interrupt
        while !partial.exists() && t0.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(20 * attempt));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let res = child.wait_with_output().unwrap();
        if res.status.code() == Some(130) {
            interrupted += 1;
            let err = String::from_utf8_lossy(&res.stderr);
            assert!(
                err.contains("interrupted: removed the unfinished output"),
                "{err}"
            );
            assert!(entries(&dir).is_empty(), "left behind: {:?}", entries(&dir));
        } else {
            // it finished before the signal: the complete suite is there
            assert!(res.status.success());
            assert_eq!(entries(&dir), ["suite"]);
            std::fs::remove_dir_all(&out).unwrap();
        }
    }
    assert!(interrupted >= 1, "never interrupted mid-write");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Output into a pipe closed by its reader ends the process quietly (the
/// default SIGPIPE action), not with an error message or a panic.
#[cfg(unix)]
#[test]
fn closed_pipe_ends_quietly() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = exe()
        // about a second of streamed tokens after the prompt
        .args(["generate", "--builtin", "small", "-n", "900", "-p", "yyyyy"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let res = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!err.contains("panicked") && !err.contains("error"), "{err}");
    assert_eq!(res.status.signal(), Some(13), "SIGPIPE: {:?}", res.status);
}
