use ktstr::prelude::*;

#[derive(Schedulers)]
pub enum Sched {
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland", path = "/usr/bin/scx_bpfland")]
    Bpfland,
}

#[derive(Schedulers)]
pub enum Again {
    #[scheduler(name = "eevdf", on_path = "x")]
    Eevdf,
}

fn main() {}
