//! `mkp`: Inspect, build and manage Checkmk MKP extension packages.
fn main() {}
