// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "ims",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ims", targets: ["ims"]),
        .library(name: "IMSProtocol", targets: ["IMSProtocol"]),
        .library(name: "IMSPluginKit", targets: ["IMSPluginKit"]),
        .library(name: "IMSPluginHost", targets: ["IMSPluginHost"]),
        .executable(name: "ims-example-swift", targets: ["ims-example-swift"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // jwt-kit needs swift-crypto 4; the range keeps 3.x possible for the rest.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.7.1"),
    ],
    targets: [
        // C libraries the engine links against (see docs/architecture.md).
        .systemLibrary(name: "CLibArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CJSONC", pkgConfig: "json-c", providers: [.apt(["libjson-c-dev"])]),
        // Small C shims for Linux process supervision: the one spawn path (new session, fds 0-2 only), pidfd, reaping.
        .target(name: "CIMSSystem"),

        // The wire protocol: one Codable source of truth shared by the host and the Swift SDK.
        .target(name: "IMSProtocol", swiftSettings: strictSettings),
        // Discovery, validation, selection and supervised invocation of plugins; the PluginRunner seam; host tools and
        // detached processes through the same spawn path.
        .target(
            name: "IMSPluginHost",
            dependencies: [
                "IMSProtocol", "CIMSSystem", "CJSONC",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Recipe archives through libarchive: safe extraction with limits, reproducible packing.
        .target(
            name: "IMSArchive",
            dependencies: ["CLibArchive", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // KIWI-NG image descriptions through libxml2: typed model, normalisation, validation.
        .target(name: "IMSKiwi", dependencies: ["CLibXML2"], swiftSettings: strictSettings),
        // Recipes: loading from directories or archives, templating, repository rewriting and readiness.
        .target(
            name: "IMSRecipes",
            dependencies: [
                "IMSArchive", "IMSKiwi",
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Records (recipes, images, jobs, public keys) in SQLite through GRDB.
        .target(
            name: "IMSCatalog",
            dependencies: ["IMSProtocol", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        // Artifact stores (the local file:// store; S3 through store plugins) and IMS's manifest.json.
        .target(
            name: "IMSStore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // The lifecycle engine: pipelines, jobs (steps, builtins, typed events), site settings, the plugin-backed store.
        .target(
            name: "IMSEngine",
            dependencies: [
                "IMSProtocol", "IMSPluginHost", "IMSRecipes", "IMSKiwi", "IMSArchive", "IMSCatalog", "IMSStore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The Swift SDK for plugin authors.
        .target(
            name: "IMSPluginKit",
            dependencies: ["IMSProtocol", "CIMSSystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // IMS's REST API on Hummingbird 2 (`ims serve`): routes, problem+json errors and request validation over the
        // same catalog, store and engine as the command line.
        .target(
            name: "IMSServer",
            dependencies: [
                "IMSProtocol", "IMSCatalog", "IMSStore", "IMSEngine", "IMSPluginHost",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Resources/openapi.yaml links to docs/openapi.yaml: the document the server serves at /openapi.yaml.
            resources: [.embedInCode("Resources/openapi.yaml")],
            swiftSettings: strictSettings
        ),
        // The command layer (ArgumentParser), imported by the CLI tests.
        .target(
            name: "IMSCommands",
            dependencies: [
                "IMSProtocol", "IMSPluginHost", "IMSRecipes", "IMSKiwi", "IMSArchive", "IMSCatalog", "IMSStore", "IMSEngine",
                "IMSServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "ims", dependencies: ["IMSCommands"], swiftSettings: strictSettings),

        // Example plugin written with the Swift SDK; scripts/build-plugins installs it into Plugins/example-swift/bin.
        .executableTarget(
            name: "ims-example-swift",
            dependencies: ["IMSPluginKit"],
            path: "Plugins/example-swift/Sources",
            swiftSettings: strictSettings
        ),

        // Benchmarks (scripts/bench-plugin-host); not part of the test suite.
        .executableTarget(
            name: "ims-benchmarks",
            dependencies: ["IMSPluginHost", "IMSProtocol", "CIMSSystem", "IMSEngine", "IMSCatalog", "IMSStore"],
            swiftSettings: strictSettings
        ),

        .testTarget(name: "IMSProtocolTests", dependencies: ["IMSProtocol"]),
        .testTarget(name: "IMSCLITests", dependencies: ["ims", "IMSCommands"]),
        .testTarget(
            name: "IMSServerTests",
            dependencies: [
                "ims", "IMSServer", "IMSCatalog", "IMSProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(name: "IMSArchiveTests", dependencies: ["IMSArchive", "CLibArchive"]),
        .testTarget(name: "IMSKiwiTests", dependencies: ["IMSKiwi"]),
        .testTarget(name: "IMSCatalogTests", dependencies: ["IMSCatalog", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "IMSStoreTests", dependencies: ["IMSStore"]),
        .testTarget(
            name: "IMSEngineTests",
            dependencies: ["IMSEngine", "IMSCatalog", "IMSStore", "IMSPluginHost", "IMSProtocol", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "IMSRecipesTests", dependencies: ["IMSRecipes", "IMSKiwi"]),
        .testTarget(
            name: "IMSPluginHostTests",
            dependencies: ["IMSPluginHost", "IMSProtocol", "CIMSSystem", .product(name: "Crypto", package: "swift-crypto")]
        ),
    ]
)
