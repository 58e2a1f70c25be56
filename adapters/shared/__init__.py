"""What the storage adapters of every family share: answers computed over records held in process
(for stores with no query language for them), the in-process search index, and the text forms of
stored keys. Every family may import this package; it imports none of them."""
