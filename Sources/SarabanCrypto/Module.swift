// SarabanCrypto: placeholder until its module lands.
enum _SarabanCryptoPlaceholder {}
