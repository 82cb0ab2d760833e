// An LD_PRELOAD library for power-loss tests (Tests/SarabanIntegrationTests/PowerLossTests.swift).
// It exports fsync and fdatasync only; nothing includes this header.
#pragma once
