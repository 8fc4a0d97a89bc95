fn main() -> std::process::ExitCode {
    ftp_server::cli::main()
}
