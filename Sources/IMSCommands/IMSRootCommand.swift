import ArgumentParser
public struct IMSRootCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "ims", abstract: "x")
    public init() {}
}
public enum CommandLineEntry { public static func main() async { await IMSRootCommand.main() } }
