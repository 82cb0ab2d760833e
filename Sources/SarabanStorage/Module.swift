// SarabanStorage: placeholder until its module lands.
enum _SarabanStoragePlaceholder {}
