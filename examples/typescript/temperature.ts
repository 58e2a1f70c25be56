// Converts a temperature between Celsius, Fahrenheit and Kelvin.
type Unit = "C" | "F" | "K";

interface Params {
  value: number;
  from: Unit;
  to: Unit;
}

function toKelvin(value: number, unit: Unit): number {
  if (unit === "C") return value + 273.15;
  if (unit === "F") return ((value - 32) * 5) / 9 + 273.15;
  return value;
}

function fromKelvin(kelvin: number, unit: Unit): number {
  if (unit === "C") return kelvin - 273.15;
  if (unit === "F") return ((kelvin - 273.15) * 9) / 5 + 32;
  return kelvin;
}

export async function handler(params: Params): Promise<{ value: number; unit: Unit }> {
  const converted = fromKelvin(toKelvin(params.value, params.from), params.to);
  return { value: Math.round(converted * 100) / 100, unit: params.to };
}
