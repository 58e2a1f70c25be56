// Turns a title into a URL slug: lower case, ASCII letters and digits joined by one separator.
function handler(params) {
  const separator = params.separator ?? "-";
  const slug = params.title
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, separator)
    .replace(new RegExp(`^\\${separator}+|\\${separator}+$`, "g"), "");
  return { slug, length: slug.length };
}

module.exports = { handler };
