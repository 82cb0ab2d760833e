// SarabanNode: placeholder until its module lands.
enum _SarabanNodePlaceholder {}
