/// The pipelines that ship with ims. A site overrides or extends them with files in
/// `<site-config-dir>/pipelines/<name>.yaml` (see docs/pipelines.md).
public enum DefaultPipelines {
    /// The steps both pipelines end with: package the root, store the artifacts and manifest, register the image.
    /// A customize job's root is what a person or script made of it, seen once: its package step is not cached.
    static func packageAndRegister(cache: Bool) -> String {
        """
          - name: package
            phase: package
            plugin: org.ims.package.squashfs
            status: packaging_artifacts
            timeout_seconds: 3600\(cache ? "" : "\n    cache: false")
          - name: upload-artifacts
            builtin: upload-artifacts
            retry: {attempts: 3, backoff_seconds: 5}
          - name: register-image
            builtin: register-image
        """
    }

    public static let create = """
        # The create pipeline: a recipe becomes a registered image.
        version: 1
        name: create
        steps:
          - name: fetch-recipe
            builtin: fetch-recipe
            status: fetching_recipe
          - name: prepare-recipe
            builtin: prepare-recipe
          - name: wait-for-repos
            builtin: wait-for-repos
            status: waiting_for_repos
          - name: build-root
            phase: build-root
            status: building_image
            timeout_seconds: 7200
          - name: inject-ca
            phase: inject-ca
            plugin: org.ims.inject-ca
            when: ca_cert
          - name: configure-dns
            phase: configure-dns
            plugin: org.ims.configure-dns
            when: dns
          - name: sbom
            phase: sbom
            plugin: org.ims.sbom.rpm
        \(packageAndRegister(cache: true))
        """

    public static let customize = """
        # The customize pipeline: an image is changed and repackaged as a new image (the source stays as it is).
        version: 1
        name: customize
        steps:
          - name: fetch-image
            builtin: fetch-image
            status: fetching_image
          - name: dns-swap
            phase: configure-dns
            plugin: org.ims.configure-dns
            config: {mode: swap}
            cache: false
          - name: customize
            phase: customize
            status: waiting_on_user
            timeout_seconds: 86400
          - name: dns-restore
            phase: configure-dns
            plugin: org.ims.configure-dns
            config: {mode: restore}
            cache: false
          - name: sbom
            phase: sbom
            plugin: org.ims.sbom.rpm
            cache: false
        \(packageAndRegister(cache: false))
        """

    public static func text(for name: String) -> String? {
        switch name {
        case "create": create
        case "customize": customize
        default: nil
        }
    }
}
