//! Shared helpers: a seeded generator of small triples and a batched runner
//! of the real `git merge-file`.

use std::path::Path;
use std::process::Command;

/// splitmix64, deterministic across runs and platforms.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One three-way input.
#[derive(Clone, Debug)]
pub(crate) struct Triple {
    pub(crate) base: Vec<u8>,
    pub(crate) ours: Vec<u8>,
    pub(crate) theirs: Vec<u8>,
}

fn line(r: &mut Rng, alphabet: &[&str], crlf_rate: usize) -> Vec<u8> {
    let mut l = alphabet[r.below(alphabet.len())].as_bytes().to_vec();
    if crlf_rate > 0 && r.below(crlf_rate) == 0 {
        l.push(b'\r');
    }
    l.push(b'\n');
    l
}

fn edit(r: &mut Rng, base: &[Vec<u8>], alphabet: &[&str], crlf: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let rate = 2 + r.below(6);
    for l in base {
        match r.below(rate * 2) {
            0 => {}
            1 => out.push(line(r, alphabet, crlf)),
            2 => {
                out.push(l.clone());
                out.push(line(r, alphabet, crlf));
            }
            3 => {
                out.push(line(r, alphabet, crlf));
                out.push(l.clone());
            }
            _ => out.push(l.clone()),
        }
    }
    if r.below(6) == 0 {
        out.push(line(r, alphabet, crlf));
    }
    out
}

fn join(lines: &[Vec<u8>], strip_last_nl: bool) -> Vec<u8> {
    let mut v: Vec<u8> = lines.concat();
    if strip_last_nl && v.last() == Some(&b'\n') {
        v.pop();
    }
    v
}

/// A random triple over a small alphabet so that repeated lines are common.
pub(crate) fn triple(r: &mut Rng) -> Triple {
    const ALPHABETS: &[&[&str]] = &[
        &["a", "b", "c"],
        &["a", "b", "c", "d", "e", "X", "Y"],
        &["a", "b", "}", "", "c", "{", "x = 1", "x = 2"],
        &[
            "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "k10", "k11", "k12", "}", "",
        ],
    ];
    let alphabet = ALPHABETS[r.below(ALPHABETS.len())];
    let crlf = match r.below(4) {
        0 => 1,
        1 => 3,
        _ => 0,
    };
    let max = if r.below(4) == 0 { 40 } else { 12 };
    let n = r.below(max);
    let base: Vec<Vec<u8>> = (0..n).map(|_| line(r, alphabet, crlf)).collect();
    let ours = edit(r, &base, alphabet, crlf);
    let theirs = edit(r, &base, alphabet, crlf);
    let nonl = r.below(3) == 0;
    Triple {
        base: join(&base, nonl && r.below(2) == 0),
        ours: join(&ours, nonl && r.below(2) == 0),
        theirs: join(&theirs, nonl && r.below(2) == 0),
    }
}

/// Runs `git merge-file -p <args> -L ours -L base -L theirs` on every triple
/// for every argument set, in one shell process, and returns
/// `[case][variant] = (stdout, exit code)`.
pub(crate) fn git_merge_batch(
    dir: &Path,
    cases: &[Triple],
    variants: &[&str],
) -> Vec<Vec<(Vec<u8>, i32)>> {
    for (i, c) in cases.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.b")), &c.base).unwrap();
        std::fs::write(dir.join(format!("{i}.o")), &c.ours).unwrap();
        std::fs::write(dir.join(format!("{i}.t")), &c.theirs).unwrap();
    }
    // Two shells (even and odd cases) keep both cores busy.
    let shells: Vec<_> = (0..2)
        .map(|start| {
            let mut script = String::from("set +e\n");
            for (v, args) in variants.iter().enumerate() {
                script.push_str(&format!(
                    "i={start}; while [ $i -lt {n} ]; do git merge-file -p {args} -L ours -L base -L theirs $i.o $i.b $i.t > $i.{v}.out 2>/dev/null; echo $? > $i.{v}.rc; i=$((i+2)); done\n",
                    n = cases.len()
                ));
            }
            Command::new("sh")
                .arg("-c")
                .arg(&script)
                .current_dir(dir)
                .envs(testkit::git_oracle_env(dir))
                .spawn()
                .expect("sh runs")
        })
        .collect();
    for mut sh in shells {
        assert!(sh.wait().unwrap().success());
    }
    (0..cases.len())
        .map(|i| {
            (0..variants.len())
                .map(|v| {
                    let out = std::fs::read(dir.join(format!("{i}.{v}.out"))).unwrap();
                    let rc = std::fs::read_to_string(dir.join(format!("{i}.{v}.rc"))).unwrap();
                    (out, rc.trim().parse().unwrap())
                })
                .collect()
        })
        .collect()
}

/// Shows bytes with visible line ends for failure messages.
pub(crate) fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .replace('\r', "␍")
        .replace('\n', "⏎\n")
}
