import IMSCommands
@main enum Entrypoint { static func main() async { await CommandLineEntry.main() } }
