/// Placeholder until the KIWI layer lands.
enum IMSKiwiModule {}
