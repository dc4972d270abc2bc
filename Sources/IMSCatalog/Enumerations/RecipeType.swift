/// The build tool a recipe is written for (IMS `recipe_type`).
public enum RecipeType: String, RecordEnumeration {
    case kiwiNG = "kiwi-ng"
    case packer

    public static let fieldName = "recipe_type"
}
