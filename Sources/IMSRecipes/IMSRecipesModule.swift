import IMSArchive
import IMSKiwi
/// Placeholder until the recipe layer lands.
enum IMSRecipesModule {}
