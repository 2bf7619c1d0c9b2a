//! The `sat2cap` command-line tool.
fn main() {
    eprintln!("sat2cap: no commands yet");
    std::process::exit(2);
}
