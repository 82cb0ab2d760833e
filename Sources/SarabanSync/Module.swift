// SarabanSync: placeholder until its module lands.
enum _SarabanSyncPlaceholder {}
