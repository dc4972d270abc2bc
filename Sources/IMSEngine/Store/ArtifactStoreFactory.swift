import IMSPluginHost
import IMSStore

/// Opens the store a URL names: `file://` for the local store, `s3://BUCKET` through the S3 store plugin.
public enum ArtifactStoreFactory {
    public static func open(url: String, settings: SiteSettings, plugins: PluginCatalog) throws(StoreError) -> any ArtifactStore {
        if url.hasPrefix("s3://") {
            return try PluginArtifactStore(url: url, settings: settings.s3 ?? S3Settings(), plugins: plugins)
        }
        return try ArtifactStores.open(url: url)
    }
}
