//! `omd`: Manage OMD versions and sites: versions, version, setversion, sites, create, update.
fn main() {}
