/// Placeholder until the archive layer lands.
enum IMSArchiveModule {}
