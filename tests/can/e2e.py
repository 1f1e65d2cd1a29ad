"""The daemon's E2E protection in Python (must match firmware-service/core/src/can/e2e.rs and the
DBC): CRC-8 SAE J1850 over the 16-bit data id (low byte first) and bytes 0..6, alive counter
0..14 in the low nibble of byte 6. Used by the VM tests and the soak to make CAN input."""


def crc8_sae_j1850(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xFF


def e2e_crc(frame_id, payload, crc_byte=7):
    body = bytes(b for i, b in enumerate(payload) if i != crc_byte)
    return crc8_sae_j1850(bytes([frame_id & 0xFF, (frame_id >> 8) & 0xFF]) + body)


def protect(frame_id, payload, counter):
    p = bytearray(payload)
    p[6] = (p[6] & 0xF0) | (counter % 15)
    p[7] = e2e_crc(frame_id, p)
    return bytes(p)
