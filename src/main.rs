//! The shim: everything happens in `app`.

fn main() -> std::process::ExitCode {
    releasectl::app::main()
}
