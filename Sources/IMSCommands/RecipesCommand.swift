import ArgumentParser
import Foundation

/// `ims recipes …`: recipe records, and working with recipe descriptions and archives.
struct RecipesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipes",
        abstract: "Register, inspect, validate, render and pack recipes (KIWI-NG image descriptions).",
        discussion: """
            PATH arguments take a recipe directory or an archive (tar, tar.gz/tgz, tar.xz, tar.zst, tar.bz2, zip).
            """,
        subcommands: RecipesCommand.recordCommands + RecipesCommand.descriptionCommands
    )

    /// The commands that work on recipe descriptions.
    static let descriptionCommands: [any ParsableCommand.Type] = []
}
