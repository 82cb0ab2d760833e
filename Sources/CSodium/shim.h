#ifndef SARABAN_CSODIUM_SHIM_H
#define SARABAN_CSODIUM_SHIM_H
// libsodium, reached only from the SarabanCrypto module.
#include <sodium.h>
#endif
