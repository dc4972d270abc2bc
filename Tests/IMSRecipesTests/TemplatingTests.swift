import Foundation
import IMSRecipes
import Testing

@Suite("Recipe templating")
struct TemplatingTests {
    func makeRecipe(_ files: [String: String], control: String? = "template_files:\n  - config.xml\n") throws -> String {
        let root = NSTemporaryDirectory() + "ims-tpl-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for (name, content) in files {
            let path = root + "/" + name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: path, atomically: true, encoding: .utf8)
        }
        if let control { try control.write(toFile: root + "/.ims_recipe_template.yaml", atomically: true, encoding: .utf8) }
        return root
    }

    @Test("substitutes {{ KEY }} with and without spaces, keeping the file mode")
    func substitution() throws {
        let recipe = try makeRecipe(["config.xml": "<source path=\"https://nexus/repository/csm-{{ CSM_RELEASE_VERSION }}-sle-{{SLE_VERSION}}/\"/>\n"])
        chmod(recipe + "/config.xml", 0o640)
        let rendered = try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues(["CSM_RELEASE_VERSION": "1.6.0", "SLE_VERSION": "15sp6"]))
        #expect(rendered.map(\.path) == ["config.xml"])
        #expect(rendered.first?.substitutions == 2)
        let text = try String(contentsOfFile: recipe + "/config.xml", encoding: .utf8)
        #expect(text == "<source path=\"https://nexus/repository/csm-1.6.0-sle-15sp6/\"/>\n")
        let mode = (try FileManager.default.attributesOfItem(atPath: recipe + "/config.xml")[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o640)
    }

    @Test("an undefined variable is an error naming file and line, and nothing is changed")
    func undefined() throws {
        let original = "line one\nline {{ DEFINED }}\n<x a=\"{{ MISSING }}\"/>\n"
        let recipe = try makeRecipe(["config.xml": original])
        do {
            _ = try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues(["DEFINED": "2"]))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .templateUndefined)
            #expect(error.description.hasPrefix("config.xml:3: "))
            #expect(error.description.contains("MISSING"))
        }
        #expect(try String(contentsOfFile: recipe + "/config.xml", encoding: .utf8) == original)
    }

    @Test("render_empty reproduces IMS's behaviour and reports what was empty")
    func renderEmpty() throws {
        let recipe = try makeRecipe(["config.xml": "a{{ MISSING }}b"])
        let rendered = try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues([:]), undefined: .renderEmpty)
        #expect(rendered.first?.undefined == ["MISSING"])
        #expect(try String(contentsOfFile: recipe + "/config.xml", encoding: .utf8) == "ab")
    }

    @Test("template paths are confined to the recipe", arguments: ["../outside.xml", "/etc/hostname", "link.xml"])
    func confinement(path: String) throws {
        let recipe = try makeRecipe(["config.xml": "x"], control: "template_files: [\"\(path)\"]\n")
        let outside = (recipe as NSString).deletingLastPathComponent + "/outside.xml"
        try "{{ X }}".write(toFile: outside, atomically: true, encoding: .utf8)
        try? FileManager.default.createSymbolicLink(atPath: recipe + "/link.xml", withDestinationPath: outside)
        #expect(throws: RecipeError.self) { try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues(["X": "1"])) }
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "{{ X }}")
    }

    @Test("IMS's decision table", arguments: [(true, true), (true, false), (false, true), (false, false)])
    func decisionTable(control: Bool, values: Bool) throws {
        let recipe = try makeRecipe(["config.xml": "v={{ V }}"], control: control ? "template_files: [config.xml]\n" : nil)
        let given = values ? TemplateValues(["V": "1"]) : nil
        if control && !values {
            #expect(throws: RecipeError.self) { try RecipeTemplater.render(recipeDirectory: recipe, values: given) }
        } else {
            let rendered = try RecipeTemplater.render(recipeDirectory: recipe, values: given)
            #expect(rendered.count == (control ? 1 : 0))
        }
    }

    @Test("Jinja constructs other than {{ NAME }} are refused with their line", arguments: [
        "{% if X %}y{% endif %}", "{{ X | default('a') }}", "{# comment #}", "{{ unterminated",
    ])
    func unsupportedSyntax(text: String) throws {
        let recipe = try makeRecipe(["config.xml": "first\n" + text])
        do {
            _ = try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues(["X": "1"]))
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.code == .templateSyntax)
            #expect(error.line == 2)
        }
    }

    @Test("a control file without template_files is a clear error")
    func badControlFile() throws {
        let recipe = try makeRecipe(["config.xml": "x"], control: "files: [config.xml]\n")
        #expect(throws: RecipeError.self) { try RecipeTemplater.render(recipeDirectory: recipe, values: TemplateValues([:])) }
    }

    @Test("values load from a mapping or IMS's key/value list, and from KEY=VALUE")
    func valueSources() throws {
        let directory = NSTemporaryDirectory()
        let mapping = directory + "values-\(UUID().uuidString.prefix(6)).yaml"
        try "A: one\nB: 2\n".write(toFile: mapping, atomically: true, encoding: .utf8)
        #expect(try TemplateValues.load(file: mapping).values == ["A": "one", "B": "2"])
        let list = directory + "values-\(UUID().uuidString.prefix(6)).json"
        try #"[{"key": "A", "value": "one"}]"#.write(toFile: list, atomically: true, encoding: .utf8)
        #expect(try TemplateValues.load(file: list).values == ["A": "one"])
        #expect(try TemplateValues.parse(assignments: ["A=x=y", "B="]).values == ["A": "x=y", "B": ""])
        #expect(throws: RecipeError.self) { try TemplateValues.parse(assignments: ["novalue"]) }
    }
}

@Suite("Repository rewrite rules")
struct RewriteRuleTests {
    @Test("alias rules, wildcard and URL prefixes")
    func rules() throws {
        let rules = try ["SLES15_Module_Basesystem=https://packages.local/repository/sles-basesystem",
                         "http://api-gw-service-nmn.local/repositories/=https://packages.local/repository/",
                         "*=https://nexus.local/repository/{alias}"].map(RepositoryRewriteRule.init(parsing:))
        #expect(RepositoryRewriteRule.apply(rules, alias: "SLES15_Module_Basesystem", source: "http://x/") == "https://packages.local/repository/sles-basesystem")
        #expect(RepositoryRewriteRule.apply(rules, alias: "cray", source: "http://api-gw-service-nmn.local/repositories/cray-sles15-cn/") == "https://packages.local/repository/cray-sles15-cn/")
        #expect(RepositoryRewriteRule.apply(rules, alias: "other", source: "obs://x") == "https://nexus.local/repository/other")
        #expect(RepositoryRewriteRule.apply([rules[0]], alias: "nope", source: "http://x/") == nil)
    }

    @Test("malformed rules are refused", arguments: ["noequals", "=https://x", "alias="])
    func malformed(text: String) {
        #expect(throws: RecipeError.self) { try RepositoryRewriteRule(parsing: text) }
    }

    @Test("probes name the metadata each repository type must answer")
    func probes() {
        #expect(RepositoryProbe(alias: "a", source: "https://h/r/", kind: .rpmMD).metadataURLs == ["https://h/r/repodata/repomd.xml"])
        #expect(RepositoryProbe(alias: "d", source: "https://h/debian", kind: .apt, distribution: "bookworm").metadataURLs == ["https://h/debian/dists/bookworm/InRelease", "https://h/debian/dists/bookworm/Release"])
        #expect(!RepositoryProbe(alias: "o", source: "obs://x", kind: .rpmMD).isHTTP)
    }
}
