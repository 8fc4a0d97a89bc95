fn main() -> std::process::ExitCode {
    ftp_client::cli::main()
}
