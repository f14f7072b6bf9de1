fn main() {
    eprintln!("hdl: not built yet");
    std::process::exit(2);
}
