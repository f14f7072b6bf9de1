// Moving Verilated ports of any width to and from little-endian u32 words; included by
// every harness that sim::verilator::build_shared compiles.
#pragma once
#include <cstddef>
#include <cstdint>
#include "verilated.h"

// Port widths vary with the config; Verilator picks CData/SData/IData/QData/VlWide.
template <class T> static void put(T& port, const uint32_t* w) {
    if (sizeof(T) <= 4) port = (T)w[0];
    else port = (T)((uint64_t)w[0] | ((uint64_t)w[1] << 32));
}
template <std::size_t N> static void put(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) port[i] = w[i];
}
template <class T> static void get(const T& port, uint32_t* w) {
    uint64_t v = (uint64_t)port;
    w[0] = (uint32_t)v;
    if (sizeof(T) > 4) w[1] = (uint32_t)(v >> 32);
}
template <std::size_t N> static void get(const VlWide<N>& port, uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) w[i] = port[i];
}

