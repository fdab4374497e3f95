import type { Metadata } from "next";
import type { ReactNode } from "react";

export const metadata: Metadata = {
  title: "Tech Support Client Portal",
  description: "Client portal with D1 backups",
};

// No <ClerkProvider> yet: the only authenticated surface is the admin API, which the middleware
// protects. Admin pages under /admin will need it (and it makes every page it wraps dynamic).
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", margin: "2rem auto", maxWidth: "48rem", lineHeight: 1.5, padding: "0 1rem" }}>
        {children}
      </body>
    </html>
  );
}
