// SarabanTransport: placeholder until its module lands.
enum _SarabanTransportPlaceholder {}
