// SarabanSim: placeholder until the simulator lands (reliability engineer).
enum _SarabanSimPlaceholder {}
