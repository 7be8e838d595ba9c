//! Every class of bad input in docs/bad-input.md, run through the real binary: each gives
//! its diagnostic and exit code, never a panic, and never an output file.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A scratch project: a catalog over CSV files, a segment file, and an output path.
struct Project {
    directory: tempfile::TempDir,
}

const CUSTOMERS: &str = "customer_id,age\n1,30\n2,45\n3,\n";
const PURCHASES: &str =
    "customer_id,ts,amount\n1,1998-06-01T00:00:00Z,10.5\n2,1998-06-02T00:00:00Z,99\n";

impl Project {
    fn new(customers: &str, purchases: &str, amount_type: &str) -> Project {
        let directory = tempfile::tempdir().expect("tempdir");
        std::fs::write(directory.path().join("customers.csv"), customers).expect("write");
        std::fs::write(directory.path().join("purchased.csv"), purchases).expect("write");
        std::fs::write(
            directory.path().join("segql.toml"),
            format!(
                "as_of = \"1998-07-01\"\n\n[profiles]\nsource = \"customers.csv\"\nkey = \"customer_id\"\n\n\
                 [events.purchased]\nsource = \"purchased.csv\"\nkey = \"customer_id\"\ntime = \"ts\"\n\
                 columns = {{ ts = \"timestamp\", amount = \"{amount_type}\" }}\n"
            ),
        )
        .expect("write");
        Project { directory }
    }

    fn standard() -> Project {
        Project::new(CUSTOMERS, PURCHASES, "float")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.directory.path().join(name)
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// Runs `segql COMMAND FILE --out OUT ARGS...` (`--out` only for `run`) and checks the
    /// outcome: exit code, a diagnostic containing `expected`, no panic, no output file.
    fn expect(&self, command: &str, file: &Path, args: &[&str], exit: i32, expected: &str) {
        let out = self.path("out.csv");
        let mut all: Vec<String> = vec![command.into(), file.display().to_string()];
        if command == "run" {
            all.extend(["--out".into(), out.display().to_string()]);
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let output = Command::new(env!("CARGO_BIN_EXE_segql"))
            .args(&all)
            .env("NO_COLOR", "1")
            .output()
            .expect("run segql");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(exit), "{all:?}:\n{stderr}");
        assert!(
            stderr.contains(expected),
            "{all:?}: expected `{expected}`:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{all:?}:\n{stderr}");
        if exit != 0 {
            assert!(!out.exists(), "{all:?}: a failed run left an output file");
        }
    }
}

#[test]
fn language_errors() {
    let p = Project::standard();
    for (text, expected) in [
        ("segment a = age >", "E0001"),
        ("segment a = agee > 3", "E0101"),
        ("segment a = age > \"x\"", "E02"),
        ("segment a = in b\nsegment b = in a", "cycle"),
        ("segment a = 12q > 3", "E0002"),
    ] {
        let file = p.write("s.seg", text);
        p.expect("check", &file, &[], 1, expected);
        p.expect("run", &file, &[], 1, expected);
    }
}

#[test]
fn empty_deep_and_huge_files() {
    let p = Project::standard();
    let empty = p.write("empty.seg", "");
    p.expect("check", &empty, &[], 0, "ok: 0 segments");
    p.expect("run", &empty, &[], 1, "E0402");

    let deep = format!("segment a = {}age > 3{}", "(".repeat(100), ")".repeat(100));
    p.expect("check", &p.write("deep.seg", deep), &[], 1, "E0003");

    // 10 MB of segments: 400 segments with 2,300-item lists each.
    let items: Vec<String> = (0..2_300).map(|i| format!("\"c{i:06}\"")).collect();
    let list = items.join(", ");
    let huge: String = (0..400)
        .map(|i| format!("segment s{i} = age in [{i}, 30] or \"x\" in [{list}]\n"))
        .collect();
    assert!(huge.len() > 10_000_000, "{}", huge.len());
    p.expect(
        "check",
        &p.write("huge.seg", huge),
        &[],
        0,
        "ok: 400 segments",
    );
}

#[test]
fn a_file_named_alone_finds_the_catalog_in_the_current_directory() {
    let p = Project::standard();
    p.write("s.seg", "segment adults = age >= 18");
    let output = Command::new(env!("CARGO_BIN_EXE_segql"))
        .args(["count", "s.seg"])
        .current_dir(p.directory.path())
        .output()
        .expect("run segql");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("adults"));
}

#[test]
fn unreadable_files() {
    let p = Project::standard();
    p.expect("check", &p.path("missing.seg"), &[], 1, "E0401");
    let binary = p.write("binary.seg", [0x73, 0x65, 0xff, 0xfe, 0x00]);
    p.expect("check", &binary, &[], 1, "E0401");
}

#[test]
fn catalog_errors() {
    let p = Project::standard();
    let file = p.write("s.seg", "segment a = age > 3");
    p.write("segql.toml", "[profiles\nsource = 1");
    p.expect("check", &file, &[], 1, "E0301");

    let p = Project::standard();
    let file = p.write("s.seg", "segment a = age > 3");
    std::fs::remove_file(p.path("purchased.csv")).expect("remove");
    p.expect("run", &file, &[], 1, "E0302");
}

#[test]
fn bad_data() {
    // A row that does not parse as the declared type.
    let p = Project::new(
        CUSTOMERS,
        "customer_id,ts,amount\n1,1998-06-01T00:00:00Z,ten\n",
        "float",
    );
    let file = p.write("s.seg", "segment big = sum(purchased.amount) > 5");
    p.expect("run", &file, &[], 1, "E0403");

    // A column whose values are not of the declared type.
    let p = Project::new(CUSTOMERS, PURCHASES, "int");
    let file = p.write("s.seg", "segment big = sum(purchased.amount) > 5");
    p.expect("run", &file, &[], 1, "declares column `amount` as int");

    // An empty event table is no error: nobody has events.
    let p = Project::new(CUSTOMERS, "customer_id,ts,amount\n", "float");
    let file = p.write("s.seg", "segment none = not purchased");
    p.expect("run", &file, &[], 0, "");
    let members = std::fs::read_to_string(p.path("out.csv")).expect("members");
    assert_eq!(
        members.lines().count(),
        4,
        "a header and 3 profiles:\n{members}"
    );

    // Duplicate and null profile keys.
    let p = Project::new("customer_id,age\n1,30\n1,31\n", PURCHASES, "float");
    let file = p.write("s.seg", "segment a = age > 3");
    p.expect("run", &file, &[], 1, "E0406");
    let p = Project::new("customer_id,age\n1,30\n,31\n", PURCHASES, "float");
    let file = p.write("s.seg", "segment a = age > 3");
    p.expect("run", &file, &[], 1, "E0406");
}
